package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// groupHelp handles a command group's help and bare forms (`airlock audit
// help`, `airlock audit`): "help", "-h" or "--help" print usage on stdout;
// no command at all prints it on stderr (stdout is for output alone) and
// is an error. done reports that there is no subcommand to run.
func groupHelp(group, usage string, args []string, stdout, stderr io.Writer) (done bool, err error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return true, fmt.Errorf("%s: a command is required", group)
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return true, nil
	}
	return false, nil
}

// interspersed reorders args so that the flags fs defines come first, then
// "--", then the positional arguments in their order: commands that take a
// single operand accept it before or after their flags (`airlock request
// dba@db-prod --for 30m`, as issue 5 writes them, and `airlock request --for
// 30m dba@db-prod`). A value flag takes the next argument as its value; a
// bool flag does not (use -flag=false). Everything after a literal "--" is
// positional, and so is "-" alone (stdin). An unknown flag is kept among the
// flags so that Parse reports it. `airlock ssh` does not use this: what
// follows its destination is the remote command, flags included.
func interspersed(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(append(flags, "--"), pos...)
}
