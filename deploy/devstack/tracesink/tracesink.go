// Package tracesink is a minimal OTLP/HTTP trace receiver for the dev stack and end-to-end
// tests: services export spans to it, it keeps the most recent ones in memory and shows them
// as traces (JSON at /api/traces, a plain HTML page at /). It is not a production backend:
// deploy/compose runs Jaeger for that.
package tracesink

import (
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, flattened.
type Span struct {
	TraceID  string    `json:"trace_id"`
	SpanID   string    `json:"span_id"`
	ParentID string    `json:"parent_id,omitempty"`
	Service  string    `json:"service"`
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Error    bool      `json:"error,omitempty"`
}

// Sink stores spans received over OTLP/HTTP.
type Sink struct {
	mu    sync.Mutex
	spans []Span
	limit int
}

// New returns a sink keeping at most limit spans (oldest dropped first).
func New(limit int) *Sink { return &Sink{limit: limit} }

// Spans returns a copy of the stored spans.
func (s *Sink) Spans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Span(nil), s.spans...)
}

// Handler serves POST /v1/traces (OTLP protobuf), GET /api/traces and GET /.
func (s *Sink) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.receive)
	mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Traces())
	})
	mux.HandleFunc("GET /{$}", s.page)
	return mux
}

func (s *Sink) receive(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, 16<<20)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, "want application/x-protobuf OTLP", http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				got = append(got, Span{
					TraceID:  hex.EncodeToString(sp.GetTraceId()),
					SpanID:   hex.EncodeToString(sp.GetSpanId()),
					ParentID: hex.EncodeToString(sp.GetParentSpanId()),
					Service:  service,
					Name:     sp.GetName(),
					Kind:     sp.GetKind().String(),
					Start:    time.Unix(0, int64(sp.GetStartTimeUnixNano())).UTC(),
					End:      time.Unix(0, int64(sp.GetEndTimeUnixNano())).UTC(),
					Error:    sp.GetStatus().GetCode() == 2,
				})
			}
		}
	}
	s.mu.Lock()
	s.spans = append(s.spans, got...)
	if over := len(s.spans) - s.limit; s.limit > 0 && over > 0 {
		s.spans = append([]Span(nil), s.spans[over:]...)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// Trace is the spans of one trace id, ordered by start time.
type Trace struct {
	TraceID  string    `json:"trace_id"`
	Start    time.Time `json:"start"`
	Services []string  `json:"services"`
	Spans    []Span    `json:"spans"`
}

// Traces groups the stored spans by trace id, newest trace first.
func (s *Sink) Traces() []Trace {
	by := map[string]*Trace{}
	for _, sp := range s.Spans() {
		t := by[sp.TraceID]
		if t == nil {
			t = &Trace{TraceID: sp.TraceID, Start: sp.Start}
			by[sp.TraceID] = t
		}
		t.Spans = append(t.Spans, sp)
		if sp.Start.Before(t.Start) {
			t.Start = sp.Start
		}
	}
	out := make([]Trace, 0, len(by))
	for _, t := range by {
		seen := map[string]bool{}
		sort.Slice(t.Spans, func(i, j int) bool { return t.Spans[i].Start.Before(t.Spans[j].Start) })
		for _, sp := range t.Spans {
			if !seen[sp.Service] {
				seen[sp.Service] = true
				t.Services = append(t.Services, sp.Service)
			}
		}
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	return out
}

var pageTmpl = template.Must(template.New("traces").Funcs(template.FuncMap{
	"ms":     func(a, b time.Time) string { return fmt.Sprintf("%.1f ms", float64(b.Sub(a).Microseconds())/1000) },
	"offset": func(a, b time.Time) string { return fmt.Sprintf("+%.1f ms", float64(b.Sub(a).Microseconds())/1000) },
}).Parse(`<!doctype html><html><head><meta charset="utf-8"><title>Trellis traces</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;margin-bottom:2rem}
td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left;font-size:.9rem}.err{color:#b00}
code{font-size:.85rem}</style></head><body><h1>Trellis traces (dev)</h1>
<p>{{len .}} traces, newest first. Each trace follows one request through every service.</p>
{{range .}}<h3><code>{{.TraceID}}</code> &middot; {{.Start.Format "15:04:05.000"}} UTC &middot; {{range .Services}}{{.}} {{end}}</h3>
<table><tr><th>offset</th><th>service</th><th>span</th><th>kind</th><th>duration</th></tr>
{{$t := .}}{{range .Spans}}<tr{{if .Error}} class="err"{{end}}><td>{{offset $t.Start .Start}}</td><td>{{.Service}}</td><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{ms .Start .End}}</td></tr>
{{end}}</table>{{end}}</body></html>`))

func (s *Sink) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, s.Traces())
}
