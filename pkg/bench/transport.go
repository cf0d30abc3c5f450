package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// fastTransport is a lean HTTP/1.1 RoundTripper for plain http:// targets. net/http's
// Transport runs a reader and a writer goroutine per connection and hands every request and
// response across channels between them; on the single core a load generator gets, those
// handoffs cost more than the request itself. fastTransport writes the request and reads the
// response on the caller's goroutine over a pooled connection, which is what wrk does in C.
//
// It keeps net/http's wire behaviour where a load test depends on it: keep-alive with a
// per-host pool, an optional per-host connection cap, one retry of an idempotent or
// rewindable request when a reused connection turns out closed by the server, and a deadline
// covering dial, request, response headers and body (the whole --timeout). It does not do
// TLS, HTTP/2, proxies or 100-continue; Run uses net/http for those.
type fastTransport struct {
	dialer    net.Dialer
	timeout   time.Duration
	keepAlive bool
	maxConns  int // per host; 0 = no cap
	idleConns int // per host

	mu    sync.Mutex
	hosts map[string]*hostPool
}

type hostPool struct {
	idle  chan *fastConn
	slots chan struct{} // nil when connections are not capped
}

type fastConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	hp *hostPool
}

func newFastTransport(timeout time.Duration, keepAlive bool, maxConns, idleConns int) *fastTransport {
	if idleConns <= 0 {
		idleConns = 1024
	}
	if maxConns > 0 {
		idleConns = maxConns
	}
	return &fastTransport{
		dialer:    net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second},
		timeout:   timeout,
		keepAlive: keepAlive,
		maxConns:  maxConns,
		idleConns: idleConns,
		hosts:     map[string]*hostPool{},
	}
}

func (t *fastTransport) pool(addr string) *hostPool {
	t.mu.Lock()
	defer t.mu.Unlock()
	hp, ok := t.hosts[addr]
	if !ok {
		hp = &hostPool{idle: make(chan *fastConn, t.idleConns)}
		if t.maxConns > 0 {
			hp.slots = make(chan struct{}, t.maxConns)
		}
		t.hosts[addr] = hp
	}
	return hp
}

// CloseIdleConnections closes every pooled connection (http.Client calls it).
func (t *fastTransport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, hp := range t.hosts {
		for {
			select {
			case c := <-hp.idle:
				c.close()
				continue
			default:
			}
			break
		}
	}
}

func (c *fastConn) close() {
	_ = c.Conn.Close()
	if c.hp.slots != nil {
		<-c.hp.slots
	}
}

// errRetryable marks a failure on a reused connection before any response byte arrived.
var errRetryable = errors.New("reused connection closed by server")

// RoundTrip sends req and reads the response headers; the body is read from the connection
// as the caller reads it, and Close returns the connection to the pool. Like any
// http.RoundTripper it does not modify req: a retry sends a fresh body from req.GetBody.
func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	addr := canonicalAddr(req)
	hp := t.pool(addr)
	var deadline time.Time
	if t.timeout > 0 {
		deadline = time.Now().Add(t.timeout)
	}
	ctx := req.Context()
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	body := req.Body
	for attempt := 0; ; attempt++ {
		pc, reused, err := t.get(ctx, hp, addr, deadline)
		if err != nil {
			closeBody(body)
			return nil, err
		}
		resp, err := t.exchange(ctx, pc, req, body, deadline, reused)
		if err == nil {
			return resp, nil
		}
		pc.close()
		if errors.Is(err, errRetryable) && attempt == 0 {
			if b, ok := rewind(req); ok {
				body = b
				continue
			}
		}
		closeBody(body)
		return nil, unwrapRetryable(err)
	}
}

func (t *fastTransport) get(ctx context.Context, hp *hostPool, addr string, deadline time.Time) (*fastConn, bool, error) {
	select {
	case pc := <-hp.idle:
		return pc, true, nil
	default:
	}
	if hp.slots != nil {
		select {
		case hp.slots <- struct{}{}:
		default:
			// Every connection is busy: wait for one to come back or for a slot.
			var timeout <-chan time.Time
			if !deadline.IsZero() {
				timer := time.NewTimer(time.Until(deadline))
				defer timer.Stop()
				timeout = timer.C
			}
			select {
			case pc := <-hp.idle:
				return pc, true, nil
			case hp.slots <- struct{}{}:
			case <-timeout:
				return nil, false, &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
	}
	dctx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	c, err := t.dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		if hp.slots != nil {
			<-hp.slots
		}
		return nil, false, err
	}
	return &fastConn{
		Conn: c,
		br:   bufio.NewReaderSize(c, 4<<10),
		bw:   bufio.NewWriterSize(c, 4<<10),
		hp:   hp,
	}, false, nil
}

// exchange sends req with body (req's own, or a replay of it) on pc and reads the response.
func (t *fastTransport) exchange(ctx context.Context, pc *fastConn, req *http.Request, body io.ReadCloser, deadline time.Time, reused bool) (*http.Response, error) {
	if err := pc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = pc.SetDeadline(time.Unix(1, 0)) })
	}
	fail := func(err error) (*http.Response, error) {
		if stop != nil {
			stop()
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	closeConn := req.Close || !t.keepAlive
	if err := writeRequest(pc.bw, req, body, closeConn); err != nil {
		return fail(maybeRetryable(err, reused, pc.br))
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(maybeRetryable(err, reused, pc.br))
	}
	if _, err := pc.br.Peek(1); err != nil {
		return fail(maybeRetryable(err, reused, pc.br))
	}
	resp, err := http.ReadResponse(pc.br, req)
	if err != nil {
		return fail(err)
	}
	resp.Body = &fastBody{rc: resp.Body, pc: pc, keep: !closeConn && !resp.Close, stop: stop}
	return resp, nil
}

// maybeRetryable marks err as retryable when the connection was reused and nothing of the
// response arrived: the server most likely closed it while it sat idle.
func maybeRetryable(err error, reused bool, br *bufio.Reader) error {
	if !reused || br.Buffered() > 0 {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return retryableError{err}
	}
	return err
}

type retryableError struct{ err error }

func (e retryableError) Error() string   { return e.err.Error() }
func (e retryableError) Unwrap() []error { return []error{e.err, errRetryable} }

func unwrapRetryable(err error) error {
	var re retryableError
	if errors.As(err, &re) {
		return re.err
	}
	return err
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout waiting for a free connection" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// rewind returns a fresh body to send req again; it reports false when the body cannot be
// replayed.
func rewind(req *http.Request) (io.ReadCloser, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	b, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	return b, true
}

func closeBody(body io.ReadCloser) {
	if body != nil {
		_ = body.Close()
	}
}

func canonicalAddr(req *http.Request) string {
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(host, port)
}

// drainLimit is how much of an unread body Close reads to keep the connection; beyond it the
// connection is closed instead.
const drainLimit = 256 << 10

type fastBody struct {
	rc   io.ReadCloser
	pc   *fastConn
	keep bool
	eof  bool
	done bool
	stop func() bool
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("read on closed response body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *fastBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if b.stop != nil {
		b.stop()
	}
	if !b.eof && b.keep {
		n, err := io.CopyN(io.Discard, b.rc, drainLimit)
		b.eof = err == io.EOF && n < drainLimit
	}
	_ = b.rc.Close()
	if b.eof && b.keep {
		select {
		case b.pc.hp.idle <- b.pc:
			return nil
		default:
		}
	}
	b.pc.close()
	return nil
}

// userAgent is what net/http sends when a request names none; fastTransport sends the same so
// that --client fast and std look alike to the target.
const userAgent = "Go-http-client/1.1"

// writeRequest writes req in HTTP/1.1 wire format with body in place of req.Body, asking the
// server to close the connection when closeConn. It is req.Write without what a load test's
// requests never need (trailers, chunked uploads, 100-continue) and without sorting and
// copying the headers on every request; requests it cannot write exactly fall back to
// req.Write on a shallow copy. Header names and values are validated as net/http does, so no
// header can inject a line. req itself is not modified; body is consumed and closed.
func writeRequest(w *bufio.Writer, req *http.Request, body io.ReadCloser, closeConn bool) error {
	if len(req.TransferEncoding) > 0 || body != nil && body != http.NoBody && req.ContentLength <= 0 || len(req.Trailer) > 0 {
		r := *req
		r.Body, r.Close = body, closeConn
		return r.Write(w)
	}
	if body == http.NoBody {
		body = nil
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("invalid Host header %q", host)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	uri := req.URL.RequestURI()
	if strings.IndexByte(uri, ' ') >= 0 {
		// url.Parse keeps a space in a query; on the request line it would end the target.
		return fmt.Errorf("request target %q has a space: percent-encode it as %%20", uri)
	}
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	if _, ok := req.Header["User-Agent"]; !ok {
		w.WriteString("User-Agent: " + userAgent + "\r\n")
	}
	switch {
	case body != nil:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n")
	case method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n")
	}
	if closeConn {
		w.WriteString("Connection: close\r\n")
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("invalid header field name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("invalid header field value for %q", k)
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(textproto.TrimString(v))
			w.WriteString("\r\n")
		}
	}
	w.WriteString("\r\n")
	if body != nil {
		n, err := io.Copy(w, body)
		_ = body.Close()
		if err != nil {
			return err
		}
		if n != req.ContentLength {
			return fmt.Errorf("http: ContentLength=%d with Body length %d", req.ContentLength, n)
		}
	}
	return nil
}
