package collector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"kzprobe/analysis"
	"kzprobe/ratelimit"
	"kzprobe/store"
)

// Defaults for Config's zero fields.
const (
	DefaultMaxBodyBytes  = 4 << 20
	DefaultRate          = 100
	DefaultBurst         = 200
	DefaultMaxClients    = 10000
	DefaultMaxConcurrent = 512
	DefaultMaxReports    = 100000
	// DefaultStaleAfter is how long a report may stay inactive before it
	// is closed: the spec's two hours (bk-003 3.0).
	DefaultStaleAfter = 2 * time.Hour
	DefaultPutTimeout = 30 * time.Second
	DefaultPageTTL    = 30 * time.Second
)

// Config configures a Server.
type Config struct {
	// Store keeps the accepted measurements. Required.
	Store store.Store
	// Judge judges each submitted chain again. Nil means the embedded
	// Mozilla roots and knowledge base.
	Judge *analysis.Judge
	// ReportsFile is the journal of open reports (see reports); empty
	// keeps them in memory, so that a restart forgets them.
	ReportsFile string
	// StaleAfter closes a report inactive that long. Zero means
	// DefaultStaleAfter.
	StaleAfter time.Duration
	// MaxReports bounds the reports open at once. Zero means
	// DefaultMaxReports.
	MaxReports int
	// MaxBodyBytes bounds a request body. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Rate is the requests per second one client (an IPv4 address or an
	// IPv6 /64) may sustain, Burst how many it may send at once. Zero
	// means DefaultRate and DefaultBurst; a negative Rate, no limit.
	Rate  float64
	Burst int
	// MaxClients bounds the clients the rate limiter tracks. Zero means
	// DefaultMaxClients.
	MaxClients int
	// MaxConcurrent bounds the requests handled at once; past it the
	// answer is 503 with Retry-After. Zero means DefaultMaxConcurrent.
	MaxConcurrent int
	// PutTimeout bounds one store write. Zero means DefaultPutTimeout.
	PutTimeout time.Duration
	// Token, when set, is the bearer token every POST needs.
	Token string
	// Page writes the live HTML report served at /; nil serves none.
	// Its output is kept PageTTL (zero means DefaultPageTTL).
	Page    func(ctx context.Context, w io.Writer) error
	PageTTL time.Duration
	// Logger receives one record per request, never a body and never a
	// probe_ip. Nil discards.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Server is the collector: OONI's collector API over a store.Store.
//
// A measurement is answered 200 only once the store has it on durable
// storage. Every refusal is a JSON ErrorResponse: 4xx for what the
// client must not send again as is, 5xx (with Retry-After) for what it
// should resend later.
type Server struct {
	cfg       Config
	reports   *reports
	judge     *analysis.Judge
	limiter   *ratelimit.PerClient
	slots     chan struct{}
	tokenHash [32]byte
	log       *slog.Logger
	mux       *http.ServeMux

	pageMu   sync.Mutex
	page     []byte
	pageTime time.Time
}

// NewServer checks cfg, opens the reports journal and returns a server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("collector: a store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.MaxReports <= 0 {
		cfg.MaxReports = DefaultMaxReports
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.PutTimeout <= 0 {
		cfg.PutTimeout = DefaultPutTimeout
	}
	if cfg.PageTTL <= 0 {
		cfg.PageTTL = DefaultPageTTL
	}
	rs, err := openReports(cfg.ReportsFile, cfg.StaleAfter, cfg.MaxReports, cfg.Now())
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, reports: rs, judge: cfg.Judge, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxConcurrent)}
	if s.judge == nil {
		s.judge = &analysis.Judge{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Rate > 0 {
		s.limiter = ratelimit.New(cfg.Rate, cfg.Burst, cfg.MaxClients)
	}
	if cfg.Token != "" {
		s.tokenHash = sha256.Sum256([]byte(cfg.Token))
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST "+ReportPath, s.openReport)
	s.mux.HandleFunc("POST "+ReportPath+"/{id}", s.update)
	s.mux.HandleFunc("POST "+ReportPath+"/{id}"+ClosePath, s.closeReport)
	s.mux.HandleFunc("POST "+MeasurementPath, s.single)
	s.mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok", "backend_version": BackendVersion})
	})
	s.mux.HandleFunc("GET /{$}", s.servePage)
	return s, nil
}

// Close closes the reports journal. It does not close the store.
func (s *Server) Close() error { return s.reports.Close() }

// HTTPServer returns an http.Server for s with bounded header, read, write
// and idle times; with tlsConfig it speaks HTTP/2 and HTTP/1.1 over TLS
// (run it with ServeTLS).
func (s *Server) HTTPServer(tlsConfig *tls.Config) *http.Server {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	if tlsConfig != nil {
		protocols.SetHTTP2(true)
	}
	return &http.Server{
		Handler:           s,
		TLSConfig:         tlsConfig,
		Protocols:         protocols,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 64},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      s.cfg.PutTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// reqLog is what one request's log record says.
type reqLog struct {
	status int
	code   string
}

type logKey struct{}

// ServeHTTP answers one request; it never panics on input.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	client := clientAddr(r)
	rl := &reqLog{}
	r = r.WithContext(context.WithValue(r.Context(), logKey{}, rl))
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic serving a request", "panic", fmt.Sprint(v))
			s.writeError(w, r, &apiError{http.StatusInternalServerError, ErrInternal, "internal error"})
		}
		level := slog.LevelInfo
		switch {
		case rl.status >= 500:
			level = slog.LevelWarn
		case rl.status == http.StatusOK && r.Method == http.MethodPost:
			level = slog.LevelDebug // one line per accepted measurement would drown the rest
		}
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("client", client.String()),
			slog.String("method", r.Method),
			slog.String("path", truncate(r.URL.Path, 96)),
			slog.Int("status", rl.status),
			slog.String("error", rl.code),
			slog.Duration("duration", s.cfg.Now().Sub(start)),
		)
	}()
	if ok, retry, full := s.limiter.Allow(ratelimit.Key(client), start); !ok {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(retry))
		if full {
			s.writeError(w, r, &apiError{http.StatusServiceUnavailable, ErrOverloaded, "too many clients at once; retry later"})
			return
		}
		s.writeError(w, r, &apiError{http.StatusTooManyRequests, ErrRateLimited, fmt.Sprintf("more than %g requests per second (burst %d) from one client", s.cfg.Rate, s.cfg.Burst)})
		return
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		s.writeError(w, r, &apiError{http.StatusServiceUnavailable, ErrOverloaded, "too many requests in progress; retry later"})
		return
	}
	if r.Method == http.MethodPost {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kzprobe-collector"`)
			s.writeError(w, r, &apiError{http.StatusUnauthorized, ErrUnauthorized, "a valid bearer token is required"})
			return
		}
		// bk-003 1.0: a collector MUST check Content-Encoding and answer
		// 415 to what it does not support; this one takes none.
		if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
			s.writeError(w, r, &apiError{http.StatusUnsupportedMediaType, ErrUnsupportedMedia, "Content-Encoding is not supported; send the body uncompressed"})
			return
		}
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// No route: the mux's own 404 or 405, as a JSON error.
		rec := &statusOnly{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			s.writeError(w, r, &apiError{http.StatusMethodNotAllowed, ErrMethodNotAllowed, "the API is POST " + ReportPath + "[/{id}[/close]]"})
			return
		}
		s.writeError(w, r, &apiError{http.StatusNotFound, ErrNotFound, "the API is POST " + ReportPath + "[/{id}[/close]]"})
		return
	}
	s.mux.ServeHTTP(w, r) // Handler does not set the path values; ServeHTTP does
}

// statusOnly records the status the mux's fallback handler would send.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(code int)        { s.status = code }

// readBody reads a body of at most MaxBodyBytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	tooLarge := &apiError{http.StatusRequestEntityTooLarge, ErrBodyTooLarge, fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes)}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge
		}
		return nil, badRequest("reading the body: %v", err)
	}
	return body, nil
}

// openReport is POST /report.
func (s *Server) openReport(w http.ResponseWriter, r *http.Request) {
	body, e := s.readBody(w, r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	q, e := parseOpen(body)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	rep, err := s.reports.add(q, s.cfg.Now())
	if err != nil {
		s.log.Warn("opening a report", "error", err.Error())
		w.Header().Set("Retry-After", "10")
		s.writeError(w, r, &apiError{http.StatusServiceUnavailable, ErrStorage, "cannot open a report now; retry later"})
		return
	}
	s.writeJSON(w, r, http.StatusOK, OpenResponse{BackendVersion: BackendVersion, ReportID: rep.ID, SupportedFormats: []string{FormatJSON}})
}

// lookup returns the open report of the URL, or the refusal.
func (s *Server) lookup(r *http.Request) (*report, *apiError) {
	id := r.PathValue("id")
	rep, gone := s.reports.get(id, s.cfg.Now())
	switch {
	case rep != nil:
		return rep, nil
	case gone:
		return nil, &apiError{http.StatusGone, ErrReportClosed, "the report was closed after inactivity; open a new one"}
	}
	return nil, &apiError{http.StatusNotFound, ErrNotFound, "no open report has this id; open a new one"}
}

// update is POST /report/{id}: one measurement appended.
func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	rep, e := s.lookup(r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	body, e := s.readBody(w, r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	resp, e := s.accept(r, rep, body)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}

// accept checks one submission for report rep, judges its chains and
// stores it.
func (s *Server) accept(r *http.Request, rep *report, body []byte) (*UpdateResponse, *apiError) {
	sub, e := parseSubmission(body, rep.ID, s.cfg.Now())
	if e != nil {
		return nil, e
	}
	if sub.TestName != rep.TestName || sub.ProbeCC != rep.ProbeCC || sub.ProbeASN != rep.ProbeASN {
		return nil, &apiError{http.StatusBadRequest, ErrReportMismatch,
			fmt.Sprintf("the measurement's test_name, probe_cc and probe_asn (%s, %s, %s) are not the report's (%s, %s, %s)",
				sub.TestName, sub.ProbeCC, sub.ProbeASN, rep.TestName, rep.ProbeCC, rep.ProbeASN)}
	}
	// The chains are judged here, by this collector's knowledge; what the
	// probe concluded is not read.
	resp := UpdateResponse{MeasurementID: sub.UID, Chains: len(sub.Chains)}
	for _, der := range sub.Chains {
		if f := s.judge.Facts(der); f.Interception != nil {
			resp.Interception++
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PutTimeout)
	defer cancel()
	err := s.cfg.Store.Put(ctx, store.Record{
		UID:      sub.UID,
		ReportID: rep.ID,
		TestName: sub.TestName,
		ProbeCC:  sub.ProbeCC,
		ProbeASN: sub.ProbeASN,
		Start:    sub.Start,
		Raw:      sub.Content,
	})
	if err != nil {
		s.log.Warn("storing a measurement", "error", err.Error())
		return nil, &apiError{http.StatusServiceUnavailable, ErrStorage, "the measurement could not be stored; keep it and retry later"}
	}
	return &resp, nil
}

// single is POST /measurement (bk-003 3.4): a report opened for one
// measurement, the measurement's report_id set to it (the one change to
// its bytes the spec asks for), stored, and the report closed.
func (s *Server) single(w http.ResponseWriter, r *http.Request) {
	body, e := s.readBody(w, r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	var env struct {
		Format  string          `json:"format"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(body, &env); err != nil || !isKind(env.Content, '{') {
		s.writeError(w, r, badRequest("the body is not a JSON object with format and a content object"))
		return
	}
	if env.Format != FormatJSON {
		s.writeError(w, r, badRequest("format %q: this collector takes json only", truncate(env.Format, 16)))
		return
	}
	var head struct {
		DataFormatVersion string `json:"data_format_version"`
		ProbeASN          string `json:"probe_asn"`
		ProbeCC           string `json:"probe_cc"`
		SoftwareName      string `json:"software_name"`
		SoftwareVersion   string `json:"software_version"`
		TestName          string `json:"test_name"`
		TestVersion       string `json:"test_version"`
	}
	json.Unmarshal(env.Content, &head)
	q := &OpenRequest{DataFormatVersion: head.DataFormatVersion, Format: FormatJSON, ProbeASN: head.ProbeASN, ProbeCC: head.ProbeCC,
		SoftwareName: head.SoftwareName, SoftwareVersion: head.SoftwareVersion, TestName: head.TestName, TestVersion: head.TestVersion}
	open, _ := json.Marshal(q)
	if q, e = parseOpen(open); e != nil {
		s.writeError(w, r, e)
		return
	}
	rep, err := s.reports.add(q, s.cfg.Now())
	if err != nil {
		s.log.Warn("opening a report", "error", err.Error())
		w.Header().Set("Retry-After", "10")
		s.writeError(w, r, &apiError{http.StatusServiceUnavailable, ErrStorage, "cannot open a report now; retry later"})
		return
	}
	defer s.reports.close(rep.ID)
	content, _, err := SetReportID(bytes.TrimSpace(env.Content), rep.ID)
	if err != nil {
		s.writeError(w, r, badRequest("content: %v", err))
		return
	}
	resp, e := s.accept(r, rep, append(append([]byte(bodyPrefix), content...), '}'))
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	s.writeJSON(w, r, http.StatusOK, SingleResponse{MeasurementID: resp.MeasurementID, ReportID: rep.ID})
}

// closeReport is POST /report/{id}/close.
func (s *Server) closeReport(w http.ResponseWriter, r *http.Request) {
	ok, err := s.reports.close(r.PathValue("id"))
	switch {
	case err != nil:
		s.log.Warn("closing a report", "error", err.Error())
		w.Header().Set("Retry-After", "10")
		s.writeError(w, r, &apiError{http.StatusServiceUnavailable, ErrStorage, "cannot close the report now; retry later"})
	case !ok:
		s.writeError(w, r, &apiError{http.StatusNotFound, ErrNotFound, "no open report has this id"})
	default:
		s.writeJSON(w, r, http.StatusOK, CloseResponse{Status: "success"})
	}
}

// servePage is GET /: the live report, rendered at most once per
// PageTTL.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Page == nil {
		s.writeError(w, r, &apiError{http.StatusNotFound, ErrNotFound, "this collector serves no report page"})
		return
	}
	page, err := s.currentPage(r.Context())
	if err != nil {
		s.log.Warn("rendering the report page", "error", err.Error())
		s.writeError(w, r, &apiError{http.StatusServiceUnavailable, ErrInternal, "the report cannot be rendered now"})
		return
	}
	rl, _ := r.Context().Value(logKey{}).(*reqLog)
	if rl != nil {
		rl.status = http.StatusOK
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page loads nothing and runs no script.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	w.Write(page)
}

func (s *Server) currentPage(ctx context.Context) ([]byte, error) {
	now := s.cfg.Now()
	s.pageMu.Lock() // one rendering at a time; the others wait for it
	defer s.pageMu.Unlock()
	if s.page != nil && now.Sub(s.pageTime) < s.cfg.PageTTL {
		return s.page, nil
	}
	var buf bytes.Buffer
	if err := s.cfg.Page(ctx, &buf); err != nil {
		return nil, err
	}
	s.page, s.pageTime = buf.Bytes(), now
	return s.page, nil
}

// authorized reports whether r carries the token (when one is set),
// compared in constant time.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "10")
	}
	if rl, _ := r.Context().Value(logKey{}).(*reqLog); rl != nil {
		rl.code = e.code
	}
	s.writeJSON(w, r, e.status, ErrorResponse{Error: e.code, Message: e.message})
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"internal","message":"cannot encode the answer"}`)
	}
	if rl, _ := r.Context().Value(logKey{}).(*reqLog); rl != nil {
		rl.status = status
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// clientAddr is the TCP peer's address.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
