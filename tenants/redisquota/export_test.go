package redisquota

// ScanCommand lets the external tests count what a client writes.
var ScanCommand = splitCommand

// splitCommand splits one RESP array of bulk strings off the front of b.
func splitCommand(b []byte) (args []string, rest []byte, ok bool) {
	parts, rest, ok := splitArgs(b)
	for _, p := range parts {
		args = append(args, string(p.([]byte)))
	}
	return args, rest, ok
}
