package tracesink

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func export(service string, spans ...*tracev1.Span) *collectortrace.ExportTraceServiceRequest {
	return &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{
			Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: service}},
		}}},
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: spans}},
	}}}
}

func span(trace, id, parent byte, name string, start uint64) *tracev1.Span {
	s := &tracev1.Span{
		TraceId: bytes.Repeat([]byte{trace}, 16), SpanId: bytes.Repeat([]byte{id}, 8), Name: name,
		StartTimeUnixNano: start, EndTimeUnixNano: start + 1000, Kind: tracev1.Span_SPAN_KIND_CONSUMER,
	}
	if parent != 0 {
		s.ParentSpanId = bytes.Repeat([]byte{parent}, 8)
	}
	return s
}

func post(t *testing.T, srv *httptest.Server, req *collectortrace.ExportTraceServiceRequest, gz bool) {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/traces", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-protobuf")
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write(body)
		_ = w.Close()
		r, _ = http.NewRequest(http.MethodPost, srv.URL+"/v1/traces", &b)
		r.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: status %d", resp.StatusCode)
	}
}

func TestSinkGroupsSpansIntoTraces(t *testing.T) {
	s := New(100)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	post(t, srv, export("intake", span(1, 1, 0, "AdmitPatient", 100), span(2, 9, 0, "other", 500)), false)
	post(t, srv, export("scheduling", span(1, 2, 1, "process admitted", 200)), true)

	traces := s.Traces()
	if len(traces) != 2 {
		t.Fatalf("got %d traces, want 2", len(traces))
	}
	var tr Trace
	for _, x := range traces {
		if strings.HasPrefix(x.TraceID, "0101") {
			tr = x
		}
	}
	if len(tr.Spans) != 2 || tr.Spans[0].Name != "AdmitPatient" || tr.Spans[1].ParentID != tr.Spans[0].SpanID {
		t.Fatalf("trace spans = %+v", tr.Spans)
	}
	if strings.Join(tr.Services, ",") != "intake,scheduling" {
		t.Errorf("services = %v", tr.Services)
	}

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page bytes.Buffer
	_, _ = page.ReadFrom(resp.Body)
	if !strings.Contains(page.String(), "process admitted") {
		t.Error("trace page does not list the spans")
	}
}

func TestSinkKeepsOnlyTheNewestSpans(t *testing.T) {
	s := New(2)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	post(t, srv, export("intake", span(1, 1, 0, "a", 1), span(1, 2, 1, "b", 2), span(1, 3, 2, "c", 3)), false)
	got := s.Spans()
	if len(got) != 2 || got[0].Name != "b" || got[1].Name != "c" {
		t.Fatalf("spans = %+v", got)
	}
}

func TestSinkRejectsGarbage(t *testing.T) {
	srv := httptest.NewServer(New(10).Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/traces", "application/x-protobuf", strings.NewReader("not protobuf \xff\xff"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
}
