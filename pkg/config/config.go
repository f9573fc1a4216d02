// Package config loads a service's typed configuration from environment variables.
//
// A config is a struct whose fields carry tags:
//
//	type Config struct {
//		HTTPAddr    string        `env:"HTTP_ADDR" default:":8081" help:"address the API listens on"`
//		DatabaseURL string        `env:"DATABASE_URL" required:"true" secret:"true" help:"..."`
//		Timeout     time.Duration `env:"TIMEOUT" default:"5s" help:"..."`
//	}
//
// Supported field types: string, bool, int, int64, float64, time.Duration, []string (comma
// separated) and nested structs (their fields are flattened, optionally prefixed with the
// struct's `prefix` tag). Secrets are masked wherever the config is printed.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Field describes one configuration variable.
type Field struct {
	Env      string
	Default  string
	Help     string
	Required bool
	Secret   bool
	value    reflect.Value
}

// Lookup reads a variable; os.LookupEnv in production, a map in tests.
type Lookup func(key string) (string, bool)

// Load fills cfg (a pointer to a struct) from the process environment.
func Load(cfg any) error { return LoadFrom(cfg, os.LookupEnv) }

// LoadFrom fills cfg from lookup, applying defaults, then checks required fields. All problems
// are reported together, each naming the variable and the rule it broke.
func LoadFrom(cfg any, lookup Lookup) error {
	fields, err := Fields(cfg)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range fields {
		raw, ok := lookup(f.Env)
		if !ok || raw == "" {
			raw = f.Default
		}
		if raw == "" {
			if f.Required {
				errs = append(errs, fmt.Errorf("%s: required but not set", f.Env))
			}
			continue
		}
		if err := set(f.value, raw); err != nil {
			if f.Secret { // the parse errors quote the value
				err = fmt.Errorf("not a valid %s (value not shown: secret)", f.value.Type())
			}
			errs = append(errs, fmt.Errorf("%s: %w", f.Env, err))
		}
	}
	return errors.Join(errs...)
}

// Fields lists the variables of cfg in declaration order.
func Fields(cfg any) ([]Field, error) {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: want a pointer to a struct, got %T", cfg)
	}
	var out []Field
	collect(v.Elem(), "", &out)
	return out, nil
}

func collect(v reflect.Value, prefix string, out *[]Field) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		fv := v.Field(i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeFor[time.Duration]() {
			collect(fv, prefix+sf.Tag.Get("prefix"), out)
			continue
		}
		name := sf.Tag.Get("env")
		if name == "" {
			continue
		}
		*out = append(*out, Field{
			Env:      prefix + name,
			Default:  sf.Tag.Get("default"),
			Help:     sf.Tag.Get("help"),
			Required: sf.Tag.Get("required") == "true",
			Secret:   sf.Tag.Get("secret") == "true",
			value:    fv,
		})
	}
}

func set(v reflect.Value, raw string) error {
	switch v.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("must be a duration such as 5s or 2m, got %q", raw)
		}
		v.SetInt(int64(d))
		return nil
	case []string:
		var parts []string
		for p := range strings.SplitSeq(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("must be an integer, got %q", raw)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("must be a number, got %q", raw)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// WithDefaults wraps lookup so that the variables in defaults fall back to the given values
// (for settings whose default differs per service, such as HTTP_ADDR).
func WithDefaults(lookup Lookup, defaults map[string]string) Lookup {
	return func(key string) (string, bool) {
		if v, ok := lookup(key); ok && v != "" {
			return v, true
		}
		v, ok := defaults[key]
		return v, ok
	}
}

// Usage writes the variables of cfg (with defaults and help) for `<svc> --help`; defaults
// overrides the tag defaults as WithDefaults does.
func Usage(w io.Writer, program, summary string, cfg any, defaults map[string]string) {
	fields, err := Fields(cfg)
	if err != nil {
		fmt.Fprintln(w, err)
		return
	}
	for i := range fields {
		if d, ok := defaults[fields[i].Env]; ok {
			fields[i].Default = d
		}
	}
	fmt.Fprintf(w, "%s: %s\n\nEnvironment variables:\n", program, summary)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, f := range fields {
		def := f.Default
		if f.Secret && def != "" {
			def = Mask(def)
		}
		req := ""
		if f.Required {
			req = " (required)"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\tdefault: %q\n", f.Env, f.Help, req, def)
	}
	_ = tw.Flush()
}

// Describe returns "NAME=value" pairs of the loaded config with secrets masked; safe to log.
func Describe(cfg any) []string {
	fields, err := Fields(cfg)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		val := fmt.Sprint(f.value.Interface())
		if f.Secret {
			val = Mask(val)
		}
		out = append(out, f.Env+"="+val)
	}
	return out
}

// Mask hides a secret. URLs keep their scheme, user, host, path and query parameter names;
// the password, every query value (libpq also accepts password=...) and the fragment are hidden.
func Mask(s string) string {
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
		}
		if u.RawQuery != "" {
			q := u.Query()
			for k := range q {
				q[k] = []string{"xxxxx"}
			}
			u.RawQuery = q.Encode()
		}
		u.Fragment, u.RawFragment = "", ""
		return u.Redacted()
	}
	return "*****"
}
