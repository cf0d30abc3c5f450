package serve

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
)

// requestError is a problem with the client's request: it carries the status to answer and a
// message naming the problem. Every client mistake becomes one, never a 500.
type requestError struct {
	Status int
	Msg    string
}

func (e *requestError) Error() string { return e.Msg }

func badRequest(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func unprocessable(format string, args ...any) *requestError {
	return &requestError{http.StatusUnprocessableEntity, fmt.Sprintf(format, args...)}
}

// statusOf returns the status a request error asks for, or 500 for anything else.
func statusOf(err error) int {
	var re *requestError
	if errors.As(err, &re) {
		return re.Status
	}
	return http.StatusInternalServerError
}

// writeError answers {"error": msg} with the status. It is the one way errors leave the server.
func writeError(w http.ResponseWriter, status int, msg string) {
	b := getBuf()
	b.b = append(b.b, `{"error":`...)
	b.b = appendJSONString(b.b, msg)
	b.b = append(b.b, "}\n"...)
	writeJSON(w, status, b.b)
	putBuf(b)
}

// writeJSON sends a JSON body with its length. net/http sets Content-Length itself, without
// allocating, for a body that fits its 2 KiB buffer; a larger one gets it here, not chunking.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	if len(body) >= 2048 {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// header returns the first value of a request header. key must be in canonical form
// ("Content-Type"): indexing the map directly skips the canonicalisation Header.Get does on
// every call, which showed in the profile of /predict.
func header(r *http.Request, key string) string {
	if v := r.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// jsonContentType is shared: http.Header stores slices, and reusing one saves an allocation.
var jsonContentType = []string{"application/json"}

// buffer is a pooled byte slice for request bodies and responses.
type buffer struct{ b []byte }

var bufPool = sync.Pool{New: func() any { return &buffer{b: make([]byte, 0, 4096)} }}

func getBuf() *buffer { b := bufPool.Get().(*buffer); b.b = b.b[:0]; return b }

// putBuf returns a buffer to the pool unless a huge request grew it: those are let go so the
// pool does not pin megabytes after one large batch.
func putBuf(b *buffer) {
	if cap(b.b) <= 256<<10 {
		bufPool.Put(b)
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal, escaping what JSON requires and the
// HTML-significant characters encoding/json escapes too. Invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendFloat appends a finite float64 in the shortest form that reads back exactly.
func appendFloat(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// delegator records the status a handler wrote, for metrics and panic handling. It is pooled:
// nothing may keep it after the request.
type delegator struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

var delegatorPool = sync.Pool{New: func() any { return new(delegator) }}

func (d *delegator) WriteHeader(code int) {
	if !d.wroteHeader {
		d.status, d.wroteHeader = code, true
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *delegator) Write(b []byte) (int, error) {
	if !d.wroteHeader {
		d.status, d.wroteHeader = http.StatusOK, true
	}
	return d.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines, flush).
func (d *delegator) Unwrap() http.ResponseWriter { return d.ResponseWriter }
