//go:build race

package sqlstore_test

// raceDetector is set in -race builds, where the pure-Go SQLite runs about
// forty times slower.
const raceDetector = true
