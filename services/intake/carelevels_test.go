package intake_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/rpc"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/demo"
)

func listCareLevelsCall(e *env, tok, edition string) (*connect.Response[intakev1.ListCareLevelsResponse], error) {
	req := connect.NewRequest(&intakev1.ListCareLevelsRequest{Edition: edition})
	if tok != "" {
		req.Header().Set("Authorization", "Bearer "+tok)
	}
	return e.client.ListCareLevels(context.Background(), req)
}

func TestListCareLevels(t *testing.T) {
	e := start(t)
	tok := e.Token(t, "clinician-1", []string{"clinician"}, []string{demo.RiversideClinicID})
	wantCodes := []string{"0.5", "1", "2.1", "2.5", "3.1", "3.3", "3.5", "3.7", "4", "1-WM", "2-WM", "3.2-WM", "3.7-WM", "4-WM"}

	for _, edition := range []string{"", "asam-3"} {
		t.Run("edition "+edition, func(t *testing.T) {
			resp, err := listCareLevelsCall(e, tok, edition)
			if err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, l := range resp.Msg.GetLevels() {
				codes = append(codes, l.GetCode())
				if l.GetEdition() != "asam-3" || l.GetName() == "" {
					t.Errorf("level %v: want edition asam-3 and a name", l)
				}
			}
			if !slices.Equal(codes, wantCodes) {
				t.Errorf("codes = %v, want %v", codes, wantCodes)
			}
			if l := resp.Msg.GetLevels()[2]; l.GetName() != "Intensive outpatient services" {
				t.Errorf("2.1 is named %q", l.GetName())
			}
		})
	}

	t.Run("bad edition", func(t *testing.T) {
		for _, tt := range []struct{ edition, rule string }{
			{"asam-99", "edition.known"},
			{"ASAM-3", "edition.known"},
			{strings.Repeat("x", 33), "string.max_len"},
		} {
			_, err := listCareLevelsCall(e, tok, tt.edition)
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("%q: code = %v (%v), want invalid_argument", tt.edition, connect.CodeOf(err), err)
			}
			vs := rpc.Violations(err)
			if len(vs) != 1 || vs[0].Field != "edition" || vs[0].Rule != tt.rule {
				t.Errorf("%q: violations = %+v, want edition/%s", tt.edition, vs, tt.rule)
			}
		}
	})

	t.Run("roles", func(t *testing.T) {
		tests := []struct {
			role string
			ok   bool // else permission_denied
		}{
			{"intake_coordinator", true}, {"clinician", true}, {"operator", true}, {"admin", true},
			{"billing", false}, {"", false},
		}
		for _, tt := range tests {
			var roles []string
			if tt.role != "" {
				roles = []string{tt.role}
			}
			// Reference data of no clinic: any clinic scope, even none, may read it.
			_, err := listCareLevelsCall(e, e.Token(t, "u-"+tt.role, roles, []string{demo.LakeviewClinicID}), "")
			if tt.ok && err != nil || !tt.ok && connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("role %q: err = %v, want ok %v or else permission_denied", tt.role, err, tt.ok)
			}
		}
		if _, err := listCareLevelsCall(e, e.Token(t, "admin-all", []string{"admin"}, []string{auth.AllClinics}), ""); err != nil {
			t.Errorf("admin, every clinic: %v", err)
		}
		if _, err := listCareLevelsCall(e, e.Token(t, "clin-none", []string{"clinician"}, nil), ""); err != nil {
			t.Errorf("clinician without clinics: %v", err)
		}
		if _, err := listCareLevelsCall(e, "", ""); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("no token: %v, want unauthenticated", err)
		}
	})
}
