/*
 * gentext: writes deterministic, compressible, prose-like text for the
 * benchmark's zstd scenario.
 *
 * A seeded generator builds a vocabulary of pseudo-words from syllables and
 * a table of short phrases over it, then writes sentences made of phrases
 * picked with a skewed (Zipf-like) choice, with numbers and punctuation
 * mixed in and lines wrapped at 72 columns. The
 * result compresses about 3-4x with zstd at its default level, like logs or
 * source text, without being a repeated block that any compressor folds to
 * nothing. The same SEED and BYTES always give the same bytes.
 *
 * usage: gentext [-s SEED] BYTES   (text on standard output)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GT_VOCAB	8192
#define GT_PHRASES	16384
#define GT_PHRASEMAX	8
#define GT_WORDMAX	24
#define GT_WIDTH	72
#define GT_NUMBER_PCT	4	/* share of tokens that are numbers */
#define GT_BUFSZ	(1024 * 1024)

struct gt_out {
	char		*buf;
	size_t		 len;
	uint64_t	 left;		/* bytes still to write in total */
	int		 col;		/* current output column */
};

/* splitmix64: small, fast, and the same everywhere. */
static uint64_t
gt_next(uint64_t *state)
{
	uint64_t z;

	z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Returns a value in [0, n). */
static uint32_t
gt_below(uint64_t *state, uint32_t n)
{
	return (uint32_t)((gt_next(state) >> 32) * n >> 32);
}

/* Flushes the buffer to stdout; exits on a write error. */
static void
gt_flush(struct gt_out *o)
{
	if (o->len > 0 && fwrite(o->buf, 1, o->len, stdout) != o->len) {
		fprintf(stderr, "gentext: write: %s\n", strerror(errno));
		exit(1);
	}
	o->len = 0;
}

/* Appends bytes, stopping exactly at the requested total size. */
static void
gt_put(struct gt_out *o, const char *s, size_t n)
{
	if (n > o->left)
		n = (size_t)o->left;
	if (o->len + n > GT_BUFSZ)
		gt_flush(o);
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->left -= n;
}

/* Appends one token, wrapping the line first when it would pass GT_WIDTH. */
static void
gt_token(struct gt_out *o, const char *s, size_t n)
{
	if (o->col > 0 && o->col + 1 + (int)n > GT_WIDTH) {
		gt_put(o, "\n", 1);
		o->col = 0;
	} else if (o->col > 0) {
		gt_put(o, " ", 1);
		o->col++;
	}
	gt_put(o, s, n);
	o->col += (int)n;
}

/* Fills vocab with GT_VOCAB pseudo-words of one to four syllables. */
static void
gt_vocab(uint64_t *state, char vocab[][GT_WORDMAX])
{
	static const char *const onset[] = {
		"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r",
		"s", "t", "v", "w", "br", "ch", "cl", "dr", "fl", "gr", "pl",
		"pr", "sh", "st", "str", "th", "tr", "",
	};
	static const char *const nucleus[] = {
		"a", "e", "i", "o", "u", "ai", "ea", "ee", "ou", "io", "y",
	};
	static const char *const coda[] = {
		"", "", "", "n", "r", "s", "t", "l", "nd", "st", "ck", "ng",
	};
	int	i, k, syl;
	size_t	len;

	for (i = 0; i < GT_VOCAB; i++) {
		/* Frequent words (low indices) are short, as in real text. */
		syl = 1 + (int)gt_below(state, i < 64 ? 1 : i < 1024 ? 3 : 4);
		vocab[i][0] = '\0';
		for (k = 0; k < syl; k++) {
			len = strlen(vocab[i]);
			snprintf(vocab[i] + len, GT_WORDMAX - len, "%s%s%s",
			    onset[gt_below(state, sizeof(onset) / sizeof(*onset))],
			    nucleus[gt_below(state,
			    sizeof(nucleus) / sizeof(*nucleus))],
			    k == syl - 1 ? coda[gt_below(state,
			    sizeof(coda) / sizeof(*coda))] : "");
		}
	}
}

/* Returns an index in [0, n) skewed toward 0, like word frequencies. */
static uint32_t
gt_skewed(uint64_t *state, uint32_t n, int power)
{
	double	u = (double)(gt_next(state) >> 11) / 9007199254740992.0;
	double	x = u;
	int	i;

	for (i = 1; i < power; i++)
		x *= u;
	return (uint32_t)(n * x);
}

/* Writes a number token (a count, a decimal or an id) into tok. */
static size_t
gt_number(uint64_t *state, char *tok, size_t toksz)
{
	uint32_t r = gt_below(state, 7), a = gt_below(state, 1000);

	if (r < 3)
		return (size_t)snprintf(tok, toksz, "%" PRIu32, a);
	if (r < 5)
		return (size_t)snprintf(tok, toksz, "%" PRIu32 ".%02" PRIu32, a,
		    gt_below(state, 100));
	return (size_t)snprintf(tok, toksz, "#%05" PRIu32,
	    gt_below(state, 100000));
}

int
main(int argc, char *argv[])
{
	static char	 vocab[GT_VOCAB][GT_WORDMAX];
	static size_t	 vocablen[GT_VOCAB];
	static uint16_t	 phrase[GT_PHRASES][GT_PHRASEMAX];
	static uint8_t	 phraselen[GT_PHRASES];
	struct gt_out	 o;
	uint64_t	 state = 20240601, total;
	char		 tok[GT_WORDMAX + 32], *end;
	int		 arg = 1, ntok, t, k;
	uint32_t	 sentences = 0, p = 0, pi = 0;
	size_t		 n;

	if (argc == 4 && strcmp(argv[1], "-s") == 0) {
		errno = 0;
		state = strtoull(argv[2], &end, 10);
		if (errno != 0 || *end != '\0') {
			fprintf(stderr, "gentext: bad seed %s\n", argv[2]);
			return 2;
		}
		arg = 3;
	}
	if (argc != arg + 1) {
		fprintf(stderr, "usage: gentext [-s SEED] BYTES\n");
		return 2;
	}
	errno = 0;
	total = strtoull(argv[arg], &end, 10);
	if (errno != 0 || *end != '\0') {
		fprintf(stderr, "gentext: bad size %s\n", argv[arg]);
		return 2;
	}
	if ((o.buf = malloc(GT_BUFSZ)) == NULL) {
		fprintf(stderr, "gentext: out of memory\n");
		return 1;
	}
	o.len = 0;
	o.left = total;
	o.col = 0;
	gt_vocab(&state, vocab);
	for (t = 0; t < GT_VOCAB; t++)
		vocablen[t] = strlen(vocab[t]);
	for (t = 0; t < GT_PHRASES; t++) {
		phraselen[t] = (uint8_t)(2 + gt_below(&state, GT_PHRASEMAX - 1));
		for (k = 0; k < phraselen[t]; k++)
			phrase[t][k] = (uint16_t)gt_skewed(&state, GT_VOCAB, 3);
	}

	while (o.left > 0) {
		ntok = 4 + (int)gt_below(&state, 15);
		for (t = 0; t < ntok; t++) {
			if (gt_below(&state, 100) < GT_NUMBER_PCT) {
				n = gt_number(&state, tok, sizeof(tok));
			} else {
				/* Continue the current phrase, or start one. */
				if (pi >= phraselen[p]) {
					p = gt_skewed(&state, GT_PHRASES, 3);
					pi = 0;
				}
				k = phrase[p][pi++];
				n = vocablen[k];
				memcpy(tok, vocab[k], n);
				if (t == 0 && tok[0] >= 'a' && tok[0] <= 'z')
					tok[0] = (char)(tok[0] - 'a' + 'A');
			}
			if (t == ntok - 1)
				tok[n++] = '.';
			else if (gt_below(&state, 100) < 6)
				tok[n++] = ',';
			gt_token(&o, tok, n);
		}
		if (++sentences % (3 + gt_below(&state, 6)) == 0) {
			gt_put(&o, "\n\n", 2);
			o.col = 0;
		}
	}
	gt_flush(&o);
	free(o.buf);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "gentext: write: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
