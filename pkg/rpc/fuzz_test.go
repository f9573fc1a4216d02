package rpc_test

import (
	"sort"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/trellis-health/trellis/pkg/rpc"
	// Every service's API registers its descriptors: the fuzz target covers all of them.
	_ "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	_ "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	_ "github.com/trellis-health/trellis/proto/gen/trellis/notification/v1"
	_ "github.com/trellis-health/trellis/proto/gen/trellis/scheduling/v1"
)

// apiMethod is one RPC of a Trellis service and its request type.
type apiMethod struct {
	name string // e.g. trellis.billing.v1.RemittanceService.WriteOff
	in   protoreflect.MessageType
}

// apiMethods lists every RPC of every trellis.* service, in name order.
func apiMethods(tb testing.TB) []apiMethod {
	tb.Helper()
	var out []apiMethod
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "trellis.") {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				md := sd.Methods().Get(j)
				mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
				if err != nil {
					tb.Fatalf("%s: %v", md.FullName(), err)
				}
				out = append(out, apiMethod{name: string(md.FullName()), in: mt})
			}
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	if len(out) < 40 {
		tb.Fatalf("found only %d RPCs: a service's generated package is not linked in", len(out))
	}
	return out
}

// FuzzRequestDecoding decodes arbitrary bytes as the request of any RPC, as Connect does (binary
// protobuf, or JSON with unknown fields discarded), and validates what decodes with the rules
// every server applies (protovalidate, then rpc.FromValidation). Whatever the input, nothing
// panics, and a request that breaks a rule is refused as invalid_argument naming the field, the
// rule and a message for each violation: never an internal error (a rule set that cannot run).
func FuzzRequestDecoding(f *testing.F) {
	methods := apiMethods(f)
	validator, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	for i := range methods {
		f.Add(uint16(i), false, []byte{})
		f.Add(uint16(i), true, []byte(`{}`))
	}
	f.Add(uint16(0), true, []byte(`{"clinicId":"not-a-uuid","limit":-1}`))
	f.Add(uint16(1), false, []byte{0x0a, 0x03, 'a', 'b', 'c', 0x10, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, which uint16, asJSON bool, data []byte) {
		m := methods[int(which)%len(methods)]
		msg := m.in.New().Interface()
		var derr error
		if asJSON {
			derr = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, msg)
		} else {
			derr = proto.Unmarshal(data, msg)
		}
		if derr != nil {
			return // Connect answers a request it cannot decode with invalid_argument itself
		}
		verr := validator.Validate(msg)
		if verr == nil {
			return
		}
		ce := rpc.FromValidation(verr)
		if ce.Code() != connect.CodeInvalidArgument {
			t.Fatalf("%s: validation answered %v, want invalid_argument: %v", m.name, ce.Code(), verr)
		}
		vs := rpc.Violations(ce)
		if len(vs) == 0 {
			t.Fatalf("%s: invalid_argument without field violations: %v", m.name, ce)
		}
		for _, v := range vs {
			if v.Field == "" || v.Rule == "" || v.Msg == "" {
				t.Fatalf("%s: violation %+v lacks its field, rule or message", m.name, v)
			}
			if !strings.Contains(ce.Message(), v.Field) {
				t.Fatalf("%s: message %q does not name %s", m.name, ce.Message(), v.Field)
			}
		}
	})
}
