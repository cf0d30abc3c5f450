package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// oneShotServer answers exactly one request per connection and then closes it without
// saying so (no Connection: close), the way an idle-timeout reaper does: the client's next
// request on that connection finds it dead and must be retried on a fresh one.
func oneShotServer(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func(c net.Conn) {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}(c)
		}
	}()
	return ln.Addr().String(), conns
}

func TestFastTransportRetriesAConnectionClosedWhileIdle(t *testing.T) {
	addr, conns := oneShotServer(t)
	tr := newFastTransport(time.Second, true, 0, 4)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(`{"n":1}`))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("request %d: body %q", i, b)
		}
		time.Sleep(5 * time.Millisecond) // let the server's close land
	}
	if conns.Load() != 5 {
		t.Fatalf("%d connections for 5 requests to a one-request-per-connection server", conns.Load())
	}
}

func TestFastTransportReadsEveryBodyFraming(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte("x"), 1<<20))
		case "/head":
			w.Header().Set("Content-Length", "10")
		default:
			_, _ = io.WriteString(w, "plain")
		}
	}))
	defer srv.Close()
	tr := newFastTransport(2*time.Second, true, 0, 4)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	tests := map[string]struct {
		method, path, want string
		readAll            bool
	}{
		"A chunked body is read whole.":              {"GET", "/chunked", "part0;part1;part2;", true},
		"Connection: close is honoured.":             {"GET", "/close", "bye", true},
		"A plain Content-Length body.":               {"GET", "/plain", "plain", true},
		"A HEAD response has no body.":               {"HEAD", "/head", "", true},
		"An unread 1 MiB body does not block Close.": {"GET", "/big", "", false},
		"The connection is still usable afterwards.": {"GET", "/plain", "plain", true},
	}
	for _, name := range []string{"A chunked body is read whole.", "Connection: close is honoured.", "A plain Content-Length body.", "A HEAD response has no body.", "An unread 1 MiB body does not block Close.", "The connection is still usable afterwards."} {
		tt := tests[name]
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if tt.readAll {
				got, _ = io.ReadAll(resp.Body)
			}
			resp.Body.Close()
			if string(got) != tt.want || resp.StatusCode != 200 {
				t.Fatalf("status %d body %q, want 200 %q", resp.StatusCode, got, tt.want)
			}
		})
	}
}

func TestFastTransportCapsConnectionsPerHost(t *testing.T) {
	var mu sync.Mutex
	remotes := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr] = true
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}))
	defer srv.Close()
	tr := newFastTransport(5*time.Second, true, 2, 0)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				resp, err := c.Get(srv.URL)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 || len(remotes) > 2 {
		t.Fatalf("%d failures over %d connections, want none over at most 2", failed.Load(), len(remotes))
	}
}

func TestFastTransportHonoursContextCancellation(t *testing.T) {
	srv := hangingServer(t)
	tr := newFastTransport(time.Minute, true, 0, 4)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Do() = %v, want context canceled", err)
	}
}

func TestWriteRequestMatchesNetHTTP(t *testing.T) {
	tests := map[string]struct {
		method, url, body string
		hdr               http.Header
		host              string
		expErr            string
	}{
		"A GET with headers.": {method: "GET", url: "http://example.test:8080/healthz?x=1", hdr: http.Header{"X-A": {"1", "2"}, "Authorization": {"Bearer t"}}},
		"A POST with a body.": {method: "POST", url: "http://example.test/predict", body: `{"x":[1,2]}`, hdr: http.Header{"Content-Type": {"application/json"}}},
		"A POST without body": {method: "POST", url: "http://example.test/predict"},
		"A Host override.":    {method: "GET", url: "http://127.0.0.1:8080/", host: "api.example.test"},
		"A header value with CRLF is refused.": {method: "GET", url: "http://example.test/", hdr: http.Header{"X-A": {"1\r\nEvil: yes"}},
			expErr: "invalid header field value"},
		"A header name with a space is refused.": {method: "GET", url: "http://example.test/", hdr: http.Header{"Bad Name": {"1"}},
			expErr: "invalid header field name"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, tt.url, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tt.hdr {
				req.Header[k] = vs
			}
			req.Host = tt.host
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			err = writeRequest(w, req, req.Body, req.Close)
			if tt.expErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.expErr) {
					t.Fatalf("writeRequest() = %v, want %q", err, tt.expErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w.Flush()
			got, err := http.ReadRequest(bufio.NewReader(&buf))
			if err != nil {
				t.Fatalf("net/http cannot read what writeRequest wrote: %v\n%s", err, buf.String())
			}
			gotBody, _ := io.ReadAll(got.Body)
			wantHost := tt.host
			if wantHost == "" {
				wantHost = req.URL.Host
			}
			if got.Method != tt.method || got.URL.RequestURI() != req.URL.RequestURI() || got.Host != wantHost || string(gotBody) != tt.body ||
				got.ContentLength != int64(len(tt.body)) || got.UserAgent() != userAgent {
				t.Fatalf("read back %s %s host %q body %q length %d agent %q", got.Method, got.URL, got.Host, gotBody, got.ContentLength, got.UserAgent())
			}
			for k, vs := range tt.hdr {
				if strings.Join(got.Header[k], "|") != strings.Join(vs, "|") {
					t.Fatalf("header %s = %q, want %q", k, got.Header[k], vs)
				}
			}
		})
	}
}

// The transport does not modify the caller's request (an http.RoundTripper must not): not
// with keep-alive off, which sends Connection: close, and not when it reads the body.
func TestRoundTripLeavesTheRequestAlone(t *testing.T) {
	var closes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Close {
			closes.Add(1)
		}
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	tr := newFastTransport(time.Second, false, 0, 0)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/predict", strings.NewReader(`{"x":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	body, hdr := req.Body, req.Header.Clone()
	for i := range 2 {
		if i > 0 {
			req.Body, _ = req.GetBody()
			body = req.Body
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if req.Close || req.Body != body || fmt.Sprint(req.Header) != fmt.Sprint(hdr) {
			t.Fatalf("request modified: Close %v, body replaced %v, header %v (was %v)", req.Close, req.Body != body, req.Header, hdr)
		}
	}
	if closes.Load() != 2 {
		t.Fatalf("%d of 2 requests asked to close the connection with keep-alive off", closes.Load())
	}
}

// FuzzWriteRequest checks writeRequest against net/http: what it writes, http.ReadRequest
// reads back as the request req.Write would have sent (method, URI, host, headers, body). It
// may refuse more than req.Write, which turns a CR or LF in a header value into a space
// where writeRequest refuses the request, but never writes what req.Write refuses.
func FuzzWriteRequest(f *testing.F) {
	f.Add("POST", "/predict?x=1", "Content-Type", "application/json", "", []byte(`{"x":[1,2]}`), false)
	f.Add("GET", "/healthz", "Authorization", "Bearer t", "api.example.test", []byte(nil), true)
	f.Add("PUT", "/a%20b", "X-A", " spaced\t", "", []byte("x"), false)
	f.Add("GET", "/", "X-A", "1\r\nEvil: yes", "", []byte(nil), false)
	f.Fuzz(func(t *testing.T, method, path, key, value, host string, body []byte, closeConn bool) {
		build := func() *http.Request {
			var rd io.Reader
			if len(body) > 0 {
				rd = bytes.NewReader(body)
			}
			req, err := http.NewRequest(method, "http://example.test"+path, rd)
			if err != nil {
				return nil
			}
			req.Header[key] = []string{value}
			req.Host = host
			return req
		}
		req := build()
		if req == nil || req.URL.Host != "example.test" {
			return
		}
		var mine, theirs bytes.Buffer
		w := bufio.NewWriter(&mine)
		myErr := writeRequest(w, req, req.Body, closeConn)
		_ = w.Flush()
		ref := build()
		ref.Close = closeConn
		if ref.Header.Get("User-Agent") == "" {
			ref.Header.Set("User-Agent", userAgent) // req.Write's own default differs from http.Client's
		}
		refErr := ref.Write(&theirs)
		if myErr != nil {
			return
		}
		if refErr != nil {
			t.Fatalf("writeRequest wrote what net/http refuses (%v):\n%q", refErr, mine.String())
		}
		got, err := http.ReadRequest(bufio.NewReader(&mine))
		if err != nil {
			t.Fatalf("net/http cannot read what writeRequest wrote: %v\n%q", err, mine.String())
		}
		want, err := http.ReadRequest(bufio.NewReader(&theirs))
		if err != nil {
			return // net/http cannot read what it wrote itself: no reference to compare with
		}
		gotBody, _ := io.ReadAll(got.Body)
		wantBody, _ := io.ReadAll(want.Body)
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host || got.Close != want.Close ||
			!bytes.Equal(gotBody, wantBody) || fmt.Sprint(got.Header) != fmt.Sprint(want.Header) {
			t.Fatalf("writeRequest:\n%q\nreads back unlike net/http's:\n%q", mine.String(), theirs.String())
		}
	})
}
