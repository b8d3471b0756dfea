package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// parseChanges applies `--change` Dockerfile instructions to an import.
// CMD and ENTRYPOINT take the JSON form (["sh","-c","..."]) or the shell
// form, which runs under /bin/sh -c as in a Dockerfile.
func parseChanges(changes []string) (pdbus.ImportOptions, error) {
	var o pdbus.ImportOptions
	for _, ch := range changes {
		instr, arg, _ := strings.Cut(strings.TrimSpace(ch), " ")
		if eq := strings.IndexByte(instr, '='); eq > 0 {
			instr, arg = instr[:eq], instr[eq+1:]+" "+arg
		}
		arg = strings.TrimSpace(arg)
		switch strings.ToUpper(instr) {
		case "CMD", "ENTRYPOINT":
			argv, err := commandForm(arg)
			if err != nil {
				return o, fmt.Errorf("--change %q: %w", ch, err)
			}
			if strings.EqualFold(instr, "CMD") {
				o.Cmd = argv
			} else {
				o.Entrypoint = argv
			}
		case "ENV":
			k, v, ok := strings.Cut(arg, "=")
			if !ok {
				k, v, ok = strings.Cut(arg, " ")
			}
			if !ok || k == "" {
				return o, fmt.Errorf("--change %q: ENV needs KEY=VALUE", ch)
			}
			o.Env = append(o.Env, k+"="+strings.TrimSpace(v))
		case "WORKDIR":
			if !strings.HasPrefix(arg, "/") {
				return o, fmt.Errorf("--change %q: WORKDIR must be an absolute path", ch)
			}
			o.WorkingDir = arg
		case "USER":
			if arg == "" {
				return o, fmt.Errorf("--change %q: USER needs a user", ch)
			}
			o.User = arg
		case "EXPOSE":
			for _, p := range strings.Fields(arg) {
				port, proto, _ := strings.Cut(p, "/")
				n, err := strconv.ParseUint(port, 10, 16)
				if err != nil || n == 0 || (proto != "" && proto != "tcp" && proto != "udp") {
					return o, fmt.Errorf("--change %q: EXPOSE takes PORT[/tcp|udp] values", ch)
				}
				if proto == "" {
					proto = "tcp"
				}
				o.ExposedPorts = append(o.ExposedPorts, fmt.Sprintf("%d/%s", n, proto))
			}
			if len(o.ExposedPorts) == 0 {
				return o, fmt.Errorf("--change %q: EXPOSE needs a port", ch)
			}
		default:
			return o, fmt.Errorf("--change %q: unsupported instruction %q: use CMD, ENTRYPOINT, ENV, WORKDIR, USER or EXPOSE", ch, instr)
		}
	}
	return o, nil
}

func commandForm(arg string) ([]string, error) {
	if strings.HasPrefix(arg, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(arg), &argv); err != nil {
			return nil, fmt.Errorf("malformed JSON array: %v", err)
		}
		return argv, nil
	}
	if arg == "" {
		return nil, fmt.Errorf("empty command")
	}
	return []string{"/bin/sh", "-c", arg}, nil
}
