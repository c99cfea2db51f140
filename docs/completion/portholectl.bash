# bash completion for portholectl(8), the Porthole admin CLI.

_portholectl()
{
	local cur prev words cword
	_init_completion || return

	case $prev in
	-s | --socket)
		_filedir
		return
		;;
	--since | --domain | --limit | --at)
		# A time, a domain, a count, a position: nothing to offer.
		return
		;;
	esac

	local i args=()
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-s | --socket | --since | --domain | --limit | --at)
			((i++))
			;;
		-*) ;;
		*)
			args+=("${words[i]}")
			;;
		esac
	done

	if [[ $cur == -* ]]; then
		local opts='-s --socket --json -h --help -V --version'
		[[ ${args[0]:-} == audit ]] && opts+=' --since --domain --limit'
		[[ ${args[0]:-} == acl && ${args[1]:-} == add ]] && opts+=' --at'
		mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
		return
	fi

	case ${#args[@]} in
	0)
		mapfile -t COMPREPLY < <(compgen -W 'status queue repo cache vm acl audit' -- "$cur")
		;;
	1)
		case ${args[0]} in
		repo)
			mapfile -t COMPREPLY < <(compgen -W 'get set ls scan verify' -- "$cur")
			;;
		cache)
			mapfile -t COMPREPLY < <(compgen -W 'stats ls clear verify' -- "$cur")
			;;
		vm)
			mapfile -t COMPREPLY < <(compgen -W 'ls enable disable' -- "$cur")
			;;
		acl)
			mapfile -t COMPREPLY < <(compgen -W 'ls add rm' -- "$cur")
			;;
		esac
		;;
	2)
		# repo set takes a host directory; repo ls a path in the repository.
		[[ ${args[0]} == repo && ${args[1]} == set ]] && _filedir -d
		[[ ${args[0]} == acl && ${args[1]} == add ]] &&
			mapfile -t COMPREPLY < <(compgen -W 'allow deny' -- "$cur")
		;;
	3)
		# acl add allow|deny MATCH: a domain name or UUID, cid:N or '*'.
		[[ ${args[0]} == acl && ${args[1]} == add ]] &&
			mapfile -t COMPREPLY < <(compgen -W "cid: '*'" -- "$cur")
		;;
	esac
} &&
	complete -F _portholectl portholectl
