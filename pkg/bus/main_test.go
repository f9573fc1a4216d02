package bus

import (
	"flag"
	"os"
	"testing"
)

// TestMain raises the default -parallel: these tests mostly wait on Postgres, JetStream and
// backoff timers, so running more at once than there are CPUs keeps the package fast. An
// explicit -test.parallel wins.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
