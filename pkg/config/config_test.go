package config_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trellis-health/trellis/pkg/config"
)

type upstream struct {
	Host    string        `env:"HOST" default:"localhost" help:"upstream host"`
	Timeout time.Duration `env:"TIMEOUT" default:"2s"`
}

type testConfig struct {
	Addr     string        `env:"HTTP_ADDR" default:":8080" help:"listen address"`
	DB       string        `env:"DATABASE_URL" required:"true" secret:"true" help:"database"`
	Key      string        `env:"SIGNING_KEY" secret:"true" default:"dev-signing-key"`
	Conns    int           `env:"MAX_CONNS" default:"4"`
	Big      int64         `env:"BIG"`
	Small    int32         `env:"SMALL"`
	Ratio    float64       `env:"RATIO" default:"0.5"`
	Timeout  time.Duration `env:"TIMEOUT" default:"5s"`
	Debug    bool          `env:"DEBUG"`
	Tags     []string      `env:"TAGS" default:"a, b,,c"`
	Upstream upstream      `prefix:"UP_"`
	NoTag    string
	internal string // unexported fields are skipped
}

func lookup(m map[string]string) config.Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsApply(t *testing.T) {
	c := testConfig{internal: "kept"}
	if err := config.LoadFrom(&c, lookup(map[string]string{"DATABASE_URL": "postgres://u:p@h/db", "internal": "x"})); err != nil {
		t.Fatal(err)
	}
	want := testConfig{Addr: ":8080", DB: "postgres://u:p@h/db", Key: "dev-signing-key", Conns: 4, Ratio: 0.5,
		Timeout: 5 * time.Second, Tags: []string{"a", "b", "c"}, Upstream: upstream{Host: "localhost", Timeout: 2 * time.Second},
		internal: "kept"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
}

func TestEnvironmentOverridesDefaults(t *testing.T) {
	var c testConfig
	err := config.LoadFrom(&c, lookup(map[string]string{
		"DATABASE_URL": "x", "HTTP_ADDR": ":9", "MAX_CONNS": "12", "BIG": "9000000000", "SMALL": "-3", "RATIO": "1e-3",
		"TIMEOUT": "1m30s", "DEBUG": "true", "TAGS": " x ", "UP_HOST": "svc", "UP_TIMEOUT": "250ms",
		"HOST": "ignored: the nested field is UP_HOST", "NoTag": "ignored",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9" || c.Conns != 12 || c.Big != 9000000000 || c.Small != -3 || c.Ratio != 0.001 ||
		c.Timeout != 90*time.Second || !c.Debug || !reflect.DeepEqual(c.Tags, []string{"x"}) ||
		c.Upstream.Host != "svc" || c.Upstream.Timeout != 250*time.Millisecond || c.NoTag != "" {
		t.Fatalf("got %+v", c)
	}
}

func TestEmptyValueFallsBackToDefault(t *testing.T) {
	var c testConfig
	if err := config.LoadFrom(&c, lookup(map[string]string{"DATABASE_URL": "x", "HTTP_ADDR": ""})); err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" {
		t.Fatalf("addr %q", c.Addr)
	}
}

func TestErrorsNameEveryBadVariable(t *testing.T) {
	var c testConfig
	err := config.LoadFrom(&c, lookup(map[string]string{
		"MAX_CONNS": "four", "TIMEOUT": "5", "DEBUG": "yes please", "RATIO": "half", "UP_TIMEOUT": "soon",
	}))
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	for _, want := range []string{
		"DATABASE_URL: required but not set",
		`MAX_CONNS: must be an integer, got "four"`,
		`TIMEOUT: must be a duration such as 5s or 2m, got "5"`,
		`DEBUG: must be true or false, got "yes please"`,
		`RATIO: must be a number, got "half"`,
		`UP_TIMEOUT: must be a duration`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestSecretValuesStayOutOfErrors(t *testing.T) {
	var c struct {
		Port int `env:"SECRET_PORT" secret:"true"`
	}
	err := config.LoadFrom(&c, lookup(map[string]string{"SECRET_PORT": "hunter2"}))
	if err == nil || !strings.Contains(err.Error(), "SECRET_PORT") {
		t.Fatalf("err %v, want it to name SECRET_PORT", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %q quotes a secret", err)
	}
}

func TestUnsupportedTypeAndBadTarget(t *testing.T) {
	var c struct {
		U uint `env:"U"`
	}
	if err := config.LoadFrom(&c, lookup(map[string]string{"U": "1"})); err == nil || !strings.Contains(err.Error(), "U: unsupported type") {
		t.Fatalf("err %v", err)
	}
	if err := config.LoadFrom(c, lookup(nil)); err == nil {
		t.Fatal("a non-pointer must be refused")
	}
	if _, err := config.Fields(new(int)); err == nil {
		t.Fatal("a pointer to a non-struct must be refused")
	}
}

func TestDescribeMasksSecrets(t *testing.T) {
	var c testConfig
	if err := config.LoadFrom(&c, lookup(map[string]string{
		"DATABASE_URL": "postgres://intake:s3cr3t@db:5432/trellis?sslmode=disable",
		"SIGNING_KEY":  "very-secret-key",
	})); err != nil {
		t.Fatal(err)
	}
	d := strings.Join(config.Describe(&c), "\n")
	for _, leak := range []string{"s3cr3t", "very-secret-key"} {
		if strings.Contains(d, leak) {
			t.Fatalf("Describe leaks %q:\n%s", leak, d)
		}
	}
	for _, want := range []string{
		"DATABASE_URL=postgres://intake:xxxxx@db:5432/trellis", "SIGNING_KEY=*****", "HTTP_ADDR=:8080",
		"MAX_CONNS=4", "TIMEOUT=5s", "UP_HOST=localhost",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe lacks %q:\n%s", want, d)
		}
	}
	if config.Describe(c) != nil {
		t.Fatal("Describe of a non-pointer must be nil")
	}
}

func TestUsageListsVariablesAndMasksSecretDefaults(t *testing.T) {
	var buf bytes.Buffer
	config.Usage(&buf, "intake", "admits patients", &testConfig{}, map[string]string{"HTTP_ADDR": ":8081"})
	out := buf.String()
	for _, want := range []string{
		"intake: admits patients", "DATABASE_URL", "database (required)", `default: ":8081"`,
		"SIGNING_KEY", `default: "*****"`, "UP_HOST", "upstream host", "UP_TIMEOUT",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "dev-signing-key") || strings.Contains(out, `":8080"`) {
		t.Fatalf("usage shows a secret default or an overridden default:\n%s", out)
	}
}

func TestWithDefaults(t *testing.T) {
	l := config.WithDefaults(lookup(map[string]string{"SET": "env", "EMPTY": ""}),
		map[string]string{"SET": "default", "EMPTY": "default", "ONLY_DEFAULT": "d"})
	for key, want := range map[string]struct {
		v  string
		ok bool
	}{
		"SET": {"env", true}, "EMPTY": {"default", true}, "ONLY_DEFAULT": {"d", true}, "NEITHER": {"", false},
	} {
		if v, ok := l(key); v != want.v || ok != want.ok {
			t.Errorf("%s: %q %v, want %q %v", key, v, ok, want.v, want.ok)
		}
	}
	// Per-service defaults beat tag defaults; the environment beats both.
	var c testConfig
	if err := config.LoadFrom(&c, config.WithDefaults(lookup(map[string]string{"DATABASE_URL": "x"}),
		map[string]string{"HTTP_ADDR": ":8083"})); err != nil || c.Addr != ":8083" {
		t.Fatalf("addr %q err %v", c.Addr, err)
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   "",
		"plain-secret":                       "*****",
		"postgres://u:pw@h:5432/db":          "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db":                  "postgres://u@h/db",
		"nats://h:4222":                      "nats://h:4222",
		"user:pw@host":                       "*****",
		"postgres://h/db?user=u&password=pw": "postgres://h/db?password=xxxxx&user=xxxxx",
		"https://hooks.example/x#token":      "https://hooks.example/x",
	} {
		if got := config.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}
