complete -c sbx -s p -l profile -d 'The security profile: a NAME (looked up in $XDG_CONFIG_HOME/sbx/profiles, /etc/sbx/profiles, then the built-ins) or a PATH; default: default' -r
complete -c sbx -l print-profile -d 'Print a profile fully resolved (includes merged, variables substituted)' -r
complete -c sbx -l check-profile -d 'Check a profile file and report every error found' -r
complete -c sbx -l name -d 'Name this sandbox (letters, digits, . _ -); default: PROFILE-PID' -r
complete -c sbx -l enter -d 'Run CMD (default: your shell) inside the running sandbox NAME, confined as its command is' -r
complete -c sbx -l inspect -d 'Show how process PID (or sandbox NAME) is isolated: namespaces, id maps, capabilities, no_new_privs, seccomp, Landlock, mounts' -r
complete -c sbx -l kill -d 'Signal the running sandbox NAME (--signal, default TERM), then KILL after --grace seconds, and wait until it is gone' -r
complete -c sbx -l signal -d 'The signal --kill sends first (name or number)' -r
complete -c sbx -l grace -d 'Seconds --kill waits before SIGKILL (default 5)' -r
complete -c sbx -l info-fd -d 'Write one JSON object to FD once the sandbox is set up (pid, name, namespaces)' -r
complete -c sbx -l status-fd -d 'Write one JSON object to FD when the sandbox has ended (exit code or signal)' -r
complete -c sbx -l completions -d 'Print the completion script for SHELL (bash, zsh, fish, elvish, powershell)' -r -f -a "bash\t''
elvish\t''
fish\t''
powershell\t''
zsh\t''"
complete -c sbx -l ro-bind -d 'Bind SRC read-only (recursively, nosuid, nodev) at DST (default: SRC)' -r
complete -c sbx -l bind -d 'Bind SRC read-write (nosuid, nodev) at DST (default: SRC)' -r
complete -c sbx -l dev-bind -d 'Bind SRC read-write with device access (nosuid) at DST (default: SRC)' -r
complete -c sbx -l overlay-tmp -d 'Overlay SRC at DST (default: SRC): writes go to a 1 GiB tmpfs and are discarded when the sandbox ends' -r
complete -c sbx -l tmpfs -d 'Mount an empty tmpfs (1 GiB, mode 0755) at DST' -r
complete -c sbx -l dir -d 'Create the directory DST (and its parents) inside the sandbox' -r
complete -c sbx -l symlink -d 'Create the symlink LINK pointing to TARGET inside the sandbox' -r
complete -c sbx -l net -d 'Network: none (own namespace, loopback only), host (share the host\'s), user (own namespace with outside access through pasta) or user:host-loopback; default: the profile\'s, else none' -r -f -a "none\t'Own network namespace with loopback up'
host\t'The host\'s network namespace'
user\t'Own network namespace connected to the outside by pasta (package passt); the host\'s loopback services stay out of reach'
user:host-loopback\t'As user, and the host\'s loopback is reachable inside at host.sbx.internal'"
complete -c sbx -l publish -d 'With --net user: forward [ADDR/]HOSTPORT on the host (ADDR default 127.0.0.1) to SANDBOXPORT inside, tcp unless /udp' -r
complete -c sbx -l dns -d 'With --net user: the resolver pasta forwards the sandbox\'s DNS queries to (default: the host\'s first nameserver)' -r
complete -c sbx -l uid -d 'User id inside the sandbox (default: your own)' -r
complete -c sbx -l gid -d 'Group id inside the sandbox (default: your own)' -r
complete -c sbx -l hostname -d 'Hostname inside the sandbox (default: sbx)' -r
complete -c sbx -l cwd -d 'Working directory inside the sandbox (default: the current one if it exists inside, else $HOME, else /)' -r
complete -c sbx -l setenv -d 'Set an environment variable for the command' -r
complete -c sbx -l unsetenv -d 'Remove an environment variable' -r
complete -c sbx -l keep-env -d 'Pass a variable of sbx\'s environment through (the default allow-list is PATH HOME USER LOGNAME TERM LANG LC_* TZ)' -r
complete -c sbx -l ids -d 'How ids are mapped, over the profile\'s `ids`: auto (subordinate ids when usable, else your own id alone), subordinate (required), single' -r -f -a "auto\t''
subordinate\t''
single\t''"
complete -c sbx -l timeout -d 'Kill the whole sandbox after SECS seconds (fractions allowed); sbx then exits 124' -r
complete -c sbx -l limit -d 'Set a resource limit over the profile\'s [limits]: nofile, nproc (the sandbox\'s own processes), fsize, as, core, cpu (seconds), stack, memlock, or memory, cpus, pids (cgroup v2); VALUE `unlimited` lifts the profile\'s' -r
complete -c sbx -l memory -d 'Memory ceiling for the whole sandbox (cgroup v2 memory.max, no swap), e.g. 2G; needs a delegated cgroup (sbx --doctor)' -r
complete -c sbx -l cpus -d 'CPU time for the whole sandbox, in CPUs (cgroup v2 cpu.max; 0.5 = half of one CPU); needs a delegated cgroup' -r
complete -c sbx -l pids -d 'Process (thread) ceiling for the whole sandbox (cgroup v2 pids.max); needs a delegated cgroup. Without one, --limit nproc=N' -r
complete -c sbx -l cap-add -d 'Keep a capability (e.g. NET_RAW); it only acts inside the sandbox\'s user namespace' -r
complete -c sbx -l require -d 'Make a hardening layer mandatory: landlock (all of it, or exit 125), seccomp (a profile turning it off is an error) or cgroup (a profile\'s best-effort cgroup limits are required)' -r -f -a "landlock\t''
seccomp\t''
cgroup\t''"
complete -c sbx -l vcs -d 'What the sandbox may do to version-control metadata (.git, .hg) in its writable directories: read-only, commit (git commit works; what git executes stays read-only; dev\'s mode), writable; the profile\'s `vcs`, else read-only' -r -f -a "read-only\t'Read-only: nothing of .git or .hg can be written (the default)'
commit\t'A repository\'s own .git is staged: objects, refs and logs written in place, index and HEAD copied back after checks, what git executes read-only, anything new discarded'
writable\t'Writable like any other file: a sandbox can plant hooks and config the host\'s git will run'"
complete -c sbx -l profiles -d 'List the available profiles, where each comes from and what it is for'
complete -c sbx -l list -d 'List your running sandboxes: NAME, PID, PROFILE, NET, UPTIME, COMMAND (--json for scripts)'
complete -c sbx -l doctor -d 'Check what this host gives sbx (user namespaces, subordinate ids, Landlock, the process ceiling, cgroup limits, network, records), each missing piece with its fix'
complete -c sbx -l json -d 'Machine-readable output (JSON) where it applies'
complete -c sbx -l ssh-agent -d 'Grant the ssh-agent of SSH_AUTH_SOCK (its socket and the variable): the sandbox can use every key loaded in the agent while it runs'
complete -c sbx -l vcs-writable -d 'Same as --vcs writable: the sandbox may write hooks and config the host\'s git will run'
complete -c sbx -l dry-run -d 'Print the resolved plan as JSON and run nothing'
complete -c sbx -s v -l verbose -d 'Trace each setup step on stderr'
complete -c sbx -s q -l quiet -d 'Say nothing but errors (silences notices such as the single-id map)'
complete -c sbx -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sbx -s V -l version -d 'Print version'
