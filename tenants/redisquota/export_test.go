package redisquota

// ScanCommand lets the external tests count what a client writes.
var ScanCommand = splitCommand
