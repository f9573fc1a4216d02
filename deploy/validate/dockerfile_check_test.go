package validate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
)

// offlineImages answers BuildKit's base-image lookups without a registry: every base image is
// an empty linux/amd64 image. The Dockerfile's own instructions are what the checks are about.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}},
	})
	return ref, digest.FromBytes(cfg), cfg, nil
}

// TestDockerfileBuildChecks runs the checks of `docker build --check` (BuildKit's Dockerfile
// frontend converting every stage, for every service's build arguments) and fails on any
// warning or error: undefined variables, casing, JSON-form commands, secrets in ARG/ENV, ...
func TestDockerfileBuildChecks(t *testing.T) {
	dt := read(t, "deploy", "images", "Dockerfile")
	sm := llb.NewSourceMap(nil, "deploy/images/Dockerfile", "Dockerfile", dt)
	sm.Definition = &llb.Definition{}
	for _, svc := range services {
		res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
			Config: dockerui.Config{
				BuildArgs: map[string]string{"SERVICE": svc},
				Target:    svc,
			},
			SourceMap:    sm,
			MetaResolver: offlineImages{},
		})
		if err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		if res.Error != nil {
			t.Errorf("%s: build error: %s", svc, res.Error.Message)
		}
		for _, w := range res.Warnings {
			line := 0
			if w.Location != nil && len(w.Location.Ranges) > 0 {
				line = int(w.Location.Ranges[0].Start.Line)
			}
			t.Errorf("%s: line %d: %s: %s", svc, line, w.RuleName, strings.TrimSpace(w.Detail))
		}
	}
}
