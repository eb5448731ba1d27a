# fish completion, written by `freshroot completion fish` from the programs' own parsers.
set -g __freshroot_args 'freshroot apply|--root' 'freshroot apply|--config' 'freshroot plan|--root' 'freshroot plan|--config' 'freshroot status|--root' 'freshroot status|--config' 'freshroot undo|--root' 'freshroot undo|--config' 'freshroot audit|--root' 'freshroot audit|--config' 'freshroot audit|--ignore' 'freshroot audit|--depth' 'freshroot audit|--limit' 'freshroot migrate|--root' 'freshroot migrate|--config' 'freshroot config show|--root' 'freshroot config show|--config' 'freshroot config check|--root' 'freshroot config check|--config' 'freshroot tmpfiles|--prefix' 'freshroot tmpfiles|--exclude-prefix' 'freshroot tmpfiles|--root' 'freshroot tmpfiles|--image' 'freshroot tmpfiles|--image-policy' 'freshroot tmpfiles|--replace' 'freshroot tmpfiles|--explain' 'freshroot tmpfiles|--config' 'freshroot tmpfiles|--output' 'freshroot roots|--root' 'freshroot roots|--config' 'freshroot rescue|--root' 'freshroot rescue|--config' 'freshroot rescue|--from' 'freshroot image build|--root' 'freshroot image build|--config' 'freshroot image build|--output' 'freshroot image build|-o' 'freshroot image build|--format' 'freshroot render|--root' 'freshroot render|--config' 'freshroot render|--units' 'freshroot render|--python' 'freshroot install|--root' 'freshroot install|--config' 'freshroot install|--extra-files' 'freshroot install|--machine-id' 'freshroot install|--host-keys' 'freshroot persist-prepare|--root' 'freshroot persist-prepare|--config' 'freshroot persist-files|--root' 'freshroot persist-files|--config' 'freshroot completion|--root' 'freshroot completion|--config' 'freshroot-tmpfiles|--prefix' 'freshroot-tmpfiles|--exclude-prefix' 'freshroot-tmpfiles|--root' 'freshroot-tmpfiles|--image' 'freshroot-tmpfiles|--image-policy' 'freshroot-tmpfiles|--replace' 'freshroot-tmpfiles|--explain'
set -g __freshroot_commands freshroot 'freshroot apply' 'freshroot plan' 'freshroot status' 'freshroot undo' 'freshroot audit' 'freshroot migrate' 'freshroot config' 'freshroot config show' 'freshroot config check' 'freshroot tmpfiles' 'freshroot roots' 'freshroot rescue' 'freshroot image' 'freshroot image build' 'freshroot image inspect' 'freshroot render' 'freshroot install' 'freshroot persist-prepare' 'freshroot persist-files' 'freshroot completion' freshroot-tmpfiles

# The command path of the words before the cursor ("freshroot image build"): subcommands
# deepen it, an option's argument is skipped.
function __freshroot_path
    set -l tokens (commandline -opc)
    set -l cmdpath (string replace -r '.*/' '' -- $tokens[1])
    set -l skip 0
    for word in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '-*'
                contains -- "$cmdpath|$word" $__freshroot_args; and set skip 1
            case '*'
                contains -- "$cmdpath $word" $__freshroot_commands; and set cmdpath "$cmdpath $word"
        end
    end
    echo $cmdpath
end

# The declared image names, read with the --root and --config typed on the line.
function __freshroot_images
    set -l tokens (commandline -opc)
    set -l context
    set -l option ""
    for word in $tokens[2..-1]
        if test -n "$option"
            set -a context $option $word
            set option ""
            continue
        end
        switch $word
            case --root --config
                set option $word
            case '--root=*' '--config=*'
                set -a context $word
        end
    end
    $tokens[1] completion --images $context 2>/dev/null
end

complete -c freshroot -f
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a apply -d 'bring the root to the declared state (persistence, /etc, users, snippets)'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a plan -d 'show what apply would do, as a tree (apply --dry-run)'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a status -d 'show each persisted path against what is there, and owner/mode drift'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a undo -d 'revert what freshroot made on the root, newest first (never data)'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a audit -d 'list what on the root is not persisted, and what in storage is no longer declared'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a migrate -d 'move what the root holds at declared paths into storage, crash-safe'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a config -d 'show or check the declaration'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a tmpfiles -d 'create, remove and clean files as systemd-tmpfiles does; render tmpfiles.d files'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a roots -d 'list the old roots the btrfs wipe kept (date, size) and the blank'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a rescue -d 'copy a file or directory that was not persisted back from an old root'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a image -d 'build and inspect portable service images'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a render -d 'write the units freshroot-generator writes at boot into a directory'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a install -d 'prepare a fresh disk before its first boot: storage directories, declaration, generator'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a persist-prepare -d '(boot) create storage directories and mount points; run by freshroot-prepare.service'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a persist-files -d '(boot) bind or link the persisted files, or undo exactly that; run by freshroot-persist-files.service'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -a completion -d 'print the shell completion script for bash, zsh or fish'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -l version -d 'show program'"'"'s version number and exit'
complete -c freshroot -n 'test (__freshroot_path) = freshroot' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot apply'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot apply'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot apply'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot apply'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot apply'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot apply'"'"'' -l dry-run -s n -d 'show what would be done, change nothing'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot apply'"'"'' -l fail-fast -d 'stop at the first failed step'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot apply'"'"'' -l fix -d 'also replace what was changed by hand (drifted owner/mode, edited /etc files)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot apply'"'"'' -l boot -d 'the activation at boot (freshroot-activate.service runs it): the same plan, the boot marked first, tmpfiles.d last, failures logged for the journal'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot plan'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot plan'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot plan'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot plan'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot plan'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot plan'"'"'' -l fix -d 'plan as apply --fix would'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot plan'"'"'' -l detailed-exitcode -d 'exit 2 when there are changes to make (as terraform plan -detailed-exitcode); 0 only when there is nothing to do'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot status'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot status'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot status'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot status'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot status'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot undo'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot undo'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot undo'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot undo'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot undo'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot undo'"'"'' -l dry-run -s n -d 'show what would be done, change nothing'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -l ignore -r -f -d 'also skip files and directories matching PATTERN (a path or a glob; may be repeated)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -l depth -r -f -d 'group by the first N path components'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -l limit -r -f -d 'show the first N directories not persisted: most files first, or most bytes with --sizes (default 30; --json lists all)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -l sizes -l no-sizes -d 'also measure each file and rank groups by bytes (one stat per file, about as long as du -sx; without it the walk costs what find -xdev costs)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot audit'"'"'' -l blank -d 'with [root] wipe = "btrfs": count only files the blank snapshot does not have as they are (new or changed since it was taken): what the next wipe removes'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot migrate'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot migrate'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot migrate'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot migrate'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot migrate'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot migrate'"'"'' -l dry-run -s n -d 'show what would be done, change nothing'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot migrate'"'"'' -l copy -d 'copy into storage and leave the root'"'"'s copy in place: apply then binds over it, hiding it, as long as storage holds the same data (it refuses once they differ)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot migrate'"'"'' -F
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config'"'"'' -a show -d 'print the merged declaration (TOML, or --json)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config'"'"'' -a check -d 'read and check the whole declaration as every command does first; list every problem at file:line and exit 65'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config show'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config show'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config show'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config show'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config show'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config show'"'"'' -l verbose -s v -d 'annotate every value with the file:line that set it, and list the files read'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config check'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config check'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config check'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config check'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot config check'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l create -d 'create and adjust files and directories'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l clean -d 'clean up files and directories by age'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l remove -d 'remove files and directories marked for removal'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l purge -d 'delete files and directories marked for creation in the given files (careful!)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l cat-config -d 'show configuration files'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l tldr -d 'show non-comment parts of configuration'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l user -d 'execute user configuration'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l boot -d 'execute actions only safe at boot'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l graceful -d 'quietly ignore unknown users or groups'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l prefix -r -F -d 'only apply rules with the specified prefix'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l exclude-prefix -r -F -d 'ignore rules with the specified prefix'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -s E -d 'ignore rules prefixed with /dev, /proc, /run, /sys'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l root -r -F -d 'operate on an alternate file system root'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l image -r -F -d 'operate on disk image as filesystem root (mounted with systemd-dissect)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l image-policy -r -f -d 'specify disk image dissection policy (passed to systemd-dissect)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l replace -r -F -d 'treat arguments as replacement for PATH'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -s n -l dry-run -d 'just print what would be done'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l inline -d 'treat arguments as configuration lines'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l no-pager -d 'accepted for compatibility; never pages'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l explain -r -F -d '(freshroot) say which line keeps, cleans or would remove PATH, and why; changes nothing'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l config -r -F -d 'read the declaration from PATH instead of the root'"'"'s freshroot.toml and conf.d'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l output -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'write the .conf files into DIR'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -l json -d 'print {file name: text} as one JSON document'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot tmpfiles'"'"'' -F
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot roots'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot roots'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot roots'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot roots'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot roots'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot rescue'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot rescue'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot rescue'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot rescue'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot rescue'"'"'' -l from -r -f -d 'the old root to copy from: its name, or the start of it (2026-12-06T04) (default: the newest)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot rescue'"'"'' -l force -d 'when PATH exists, move it aside to PATH~freshroot-rescue and copy over'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot rescue'"'"'' -F
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image'"'"'' -a build -d 'build NAME_VERSION.raw from [portable.NAME]'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image'"'"'' -a inspect -d 'show an image'"'"'s units, os-release and contents (no root needed)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image build'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image build'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image build'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'read the declaration below DIR (contents and libraries always come from the host'"'"'s /)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image build'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image build'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image build'"'"'' -l output -s o -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'directory to write NAME_VERSION.raw to (default: the current directory)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image build'"'"'' -l format -r -f -a 'squashfs erofs' -d 'file system of the image (default: the declaration'"'"'s format, else squashfs)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image build'"'"'' -f -a '(__freshroot_images)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image inspect'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image inspect'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image inspect'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot image inspect'"'"'' -F
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot render'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot render'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot render'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot render'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot render'"'"'' -l json -d 'print one JSON document on stdout instead of text'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot render'"'"'' -l units -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'write the units and their symlinks into DIR'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot render'"'"'' -l initrd -d 'the units of the initrd (early paths under /sysroot)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot render'"'"'' -l python -r -F -d 'the Python the units run freshroot with (default: this one)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot install'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot install'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot install'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot install'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot install'"'"'' -l dry-run -s n -d 'show what would be done, change nothing'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot install'"'"'' -l extra-files -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'write a tree for nixos-anywhere --extra-files into DIR instead (--root: whose passwd and group name the owners)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot install'"'"'' -l copy-self -d 'also copy this freshroot into the site directory of the target'"'"'s /usr/bin/python3 (its sysconfig), with its commands in /usr/bin'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot install'"'"'' -l machine-id -r -f -d 'the machine id to keep in storage (default: the root'"'"'s, else a new one), when /etc/machine-id is persisted; also written to the root'"'"'s empty /etc/machine-id'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot install'"'"'' -l host-keys -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'copy the SSH host keys in DIR (ssh_host_*) into storage, for the persisted ones'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-prepare'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-prepare'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-prepare'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-prepare'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-prepare'"'"'' -l dry-run -s n -d 'show what would be done, change nothing'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-files'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-files'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-files'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'operate on the root file system at DIR (an offline root such as /mnt)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-files'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-files'"'"'' -l dry-run -s n -d 'show what would be done, change nothing'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-files'"'"'' -l start -d 'bind or link every persisted file'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot persist-files'"'"'' -l stop -d 'undo what --start did, newest first'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot completion'"'"'' -s h -l help -d 'show this help message and exit'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot completion'"'"'' -l debug -d 'log every step and command; show tracebacks'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot completion'"'"'' -l root -r -f -a '(__fish_complete_directories (commandline -ct))' -d 'read the declaration below DIR (where the scripts find image names)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot completion'"'"'' -l config -r -F -d 'read the declaration from PATH instead of freshroot.toml and conf.d in /etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads standard input, and a pipe is read too)'
complete -c freshroot -n 'test (__freshroot_path) = '"'"'freshroot completion'"'"'' -f -a 'bash zsh fish'
complete -c freshroot-tmpfiles -f
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -s h -l help -d 'show this help message and exit'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l version -d 'show program'"'"'s version number and exit'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l create -d 'create and adjust files and directories'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l clean -d 'clean up files and directories by age'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l remove -d 'remove files and directories marked for removal'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l purge -d 'delete files and directories marked for creation in the given files (careful!)'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l cat-config -d 'show configuration files'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l tldr -d 'show non-comment parts of configuration'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l user -d 'execute user configuration'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l boot -d 'execute actions only safe at boot'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l graceful -d 'quietly ignore unknown users or groups'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l prefix -r -F -d 'only apply rules with the specified prefix'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l exclude-prefix -r -F -d 'ignore rules with the specified prefix'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -s E -d 'ignore rules prefixed with /dev, /proc, /run, /sys'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l root -r -F -d 'operate on an alternate file system root'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l image -r -F -d 'operate on disk image as filesystem root (mounted with systemd-dissect)'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l image-policy -r -f -d 'specify disk image dissection policy (passed to systemd-dissect)'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l replace -r -F -d 'treat arguments as replacement for PATH'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -s n -l dry-run -d 'just print what would be done'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l inline -d 'treat arguments as configuration lines'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l no-pager -d 'accepted for compatibility; never pages'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l explain -r -F -d '(freshroot) say which line keeps, cleans or would remove PATH, and why; changes nothing'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -l debug -d 'log every step; show tracebacks'
complete -c freshroot-tmpfiles -n 'test (__freshroot_path) = freshroot-tmpfiles' -F
