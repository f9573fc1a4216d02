package validate

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// TestDockerfile parses deploy/images/Dockerfile with BuildKit's own parser and linter (the
// rules BuildKit checks while parsing instructions), then checks what the images promise:
// a static build, a distroless final stage per service with a numeric non-root user, no shell
// form commands, ENTRYPOINT ["/<service>"] and CMD ["serve"].
func TestDockerfile(t *testing.T) {
	src := read(t, "deploy", "images", "Dockerfile")
	ast, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, w := range ast.Warnings {
		t.Errorf("parser warning: line %d: %s", w.Location.Start.Line, w.Short)
	}
	var lint []string
	l := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		lint = append(lint, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	stages, metaArgs, err := instructions.Parse(ast.AST, l)
	if err != nil {
		t.Fatalf("instructions: %v", err)
	}
	for _, w := range lint {
		t.Errorf("lint: %s", w)
	}
	byName := map[string]instructions.Stage{}
	for _, s := range stages {
		byName[s.Name] = s
	}
	var args []string
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			args = append(args, kv.Key)
		}
	}
	if !slices.Contains(args, "RUNTIME_IMAGE") || !slices.Contains(args, "GO_VERSION") {
		t.Errorf("global ARGs %v: want GO_VERSION and RUNTIME_IMAGE", args)
	}

	build, ok := byName["build"]
	if !ok {
		t.Fatal("no stage named build")
	}
	var buildRuns, buildEnv string
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.RunCommand:
			buildRuns += strings.Join(c.CmdLine, " ") + "\n"
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				buildEnv += kv.Key + "=" + kv.Value + " "
			}
		}
	}
	for _, want := range []string{"go build -trimpath", "-tags timetzdata", "./cmd/${SERVICE}", "deploy/images/healthcheck"} {
		if !strings.Contains(buildRuns, want) {
			t.Errorf("build stage: no RUN with %q", want)
		}
	}
	if !strings.Contains(buildEnv, "CGO_ENABLED=0") {
		t.Errorf("build stage env %q: want CGO_ENABLED=0 (static binary)", buildEnv)
	}

	runtime, ok := byName["runtime"]
	if !ok {
		t.Fatal("no stage named runtime")
	}
	if runtime.BaseName != "${RUNTIME_IMAGE}" {
		t.Errorf("runtime stage FROM %s, want ${RUNTIME_IMAGE}", runtime.BaseName)
	}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Key == "RUNTIME_IMAGE" && (kv.Value == nil || !strings.HasPrefix(*kv.Value, "gcr.io/distroless/static")) {
				t.Errorf("RUNTIME_IMAGE default %v: want a gcr.io/distroless/static image (CA certificates, tzdata, no shell)", kv.Value)
			}
		}
	}
	var user string
	for _, c := range runtime.Commands {
		if u, ok := c.(*instructions.UserCommand); ok {
			user = u.User
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("runtime USER %q: want a numeric non-root uid", user)
	}

	for _, svc := range services {
		st, ok := byName[svc]
		if !ok {
			t.Errorf("no final stage %q (docker build --target %s)", svc, svc)
			continue
		}
		if st.BaseName != "runtime" {
			t.Errorf("stage %s FROM %s, want runtime", svc, st.BaseName)
		}
		var entry, cmd []string
		var copied bool
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.EntrypointCommand:
				if !c.PrependShell {
					entry = c.CmdLine
				} else {
					t.Errorf("stage %s: ENTRYPOINT in shell form (there is no shell)", svc)
				}
			case *instructions.CmdCommand:
				if !c.PrependShell {
					cmd = c.CmdLine
				} else {
					t.Errorf("stage %s: CMD in shell form (there is no shell)", svc)
				}
			case *instructions.CopyCommand:
				copied = copied || (c.From == "build" && c.DestPath == "/"+svc)
			case *instructions.RunCommand:
				t.Errorf("stage %s: RUN in a final stage (there is no shell)", svc)
			}
		}
		if !copied {
			t.Errorf("stage %s: no COPY --from=build of /%s", svc, svc)
		}
		if !slices.Equal(entry, []string{"/" + svc}) || !slices.Equal(cmd, []string{"serve"}) {
			t.Errorf("stage %s: ENTRYPOINT %q CMD %q, want [\"/%s\"] [\"serve\"]", svc, entry, cmd, svc)
		}
	}
}

// TestDockerignoreKeepsWhatTheBuildCopies: the context must hold what the COPY lines need.
func TestDockerignoreKeepsWhatTheBuildCopies(t *testing.T) {
	ignore := string(read(t, ".dockerignore"))
	for _, line := range strings.Split(ignore, "\n") {
		line = strings.TrimSpace(line)
		for _, needed := range []string{"pkg", "proto", "services"} {
			if line == needed || line == needed+"/" || line == "/"+needed {
				t.Errorf(".dockerignore excludes %s, which the image build copies", needed)
			}
		}
	}
	if !strings.Contains(ignore, "!deploy/images/healthcheck") {
		t.Error(".dockerignore must re-include deploy/images/healthcheck (the image's health probe)")
	}
}

// TestImageBuildHasEveryLocalModule: a service's go.mod may replace modules with local paths;
// the image build copies only pkg/, proto/ and the service, so every local replacement (also
// pkg's own) must be one of those, or the GOWORK=off build in the image fails.
func TestImageBuildHasEveryLocalModule(t *testing.T) {
	copied := map[string]bool{"pkg": true, "proto": true}
	re := regexp.MustCompile(`=>\s*(\.\.?/\S+)`)
	for _, mod := range append([]string{"pkg"}, func() []string {
		var out []string
		for _, s := range services {
			out = append(out, "services/"+s)
		}
		return out
	}()...) {
		gomod := string(read(t, mod, "go.mod"))
		for _, m := range re.FindAllStringSubmatch(gomod, -1) {
			target := filepath.ToSlash(filepath.Clean(filepath.Join(mod, m[1])))
			if !copied[target] {
				t.Errorf("%s/go.mod replaces a module with %s, which deploy/images/Dockerfile does not copy", mod, target)
			}
		}
	}
}
