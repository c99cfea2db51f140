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
	esac

	local i args=()
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-s | --socket)
			((i++))
			;;
		-*) ;;
		*)
			args+=("${words[i]}")
			;;
		esac
	done

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W '-s --socket --json -h --help -V --version' -- "$cur")
		return
	fi

	case ${#args[@]} in
	0)
		mapfile -t COMPREPLY < <(compgen -W 'status queue repo' -- "$cur")
		;;
	1)
		[[ ${args[0]} == repo ]] &&
			mapfile -t COMPREPLY < <(compgen -W 'get set ls' -- "$cur")
		;;
	2)
		# repo set takes a host directory; repo ls a path in the repository.
		[[ ${args[0]} == repo && ${args[1]} == set ]] && _filedir -d
		;;
	esac
} &&
	complete -F _portholectl portholectl
