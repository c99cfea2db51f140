# bash completion for porthole(1), the Porthole guest CLI.
# Remote paths are not completed: that would need a connection to the host
# on every tab press.

_porthole()
{
	local cur prev words cword
	_init_completion || return

	local i cmd=
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-e | --endpoint | --wait)
			((i++))
			;;
		-*) ;;
		*)
			cmd=${words[i]}
			break
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		case $prev in
		-e | --endpoint)
			mapfile -t COMPREPLY < <(compgen -W 'vsock:2:7390 unix:' -- "$cur")
			[[ $cur == unix:* ]] && mapfile -t COMPREPLY < <(compgen -P unix: -f -- "${cur#unix:}")
			return
			;;
		--wait)
			mapfile -t COMPREPLY < <(compgen -W '0 60 300' -- "$cur")
			return
			;;
		esac
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W '-e --endpoint --wait -h --help -V --version' -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W 'get stat ls ping sync' -- "$cur")
		fi
		return
	fi

	case $cmd in
	get)
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W '-q --quiet --resume --no-verify --json --no-zstd --fresh --wait' -- "$cur")
		else
			_filedir
		fi
		;;
	stat)
		[[ $cur == -* ]] && mapfile -t COMPREPLY < <(compgen -W '--json --wait' -- "$cur")
		;;
	ls)
		[[ $cur == -* ]] && mapfile -t COMPREPLY < <(compgen -W '-l --long --json --wait' -- "$cur")
		;;
	sync)
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W '-q --quiet --dry-run --wait' -- "$cur")
		else
			_filedir
		fi
		;;
	esac
} &&
	complete -F _porthole porthole
