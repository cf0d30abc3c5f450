// Package results reads vegeta results files: gob, JSON lines or CSV, sniffed per file as
// vegeta's own commands do, many files one after another, streamed one result at a time so
// that memory does not grow with the file. It is the one reader behind `delayctl bench
// report` and `delayctl slo report`.
package results

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/delayctl/delayctl/pkg/inputerr"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// MaxRecordBytes bounds one JSON line, one CSV record and one gob message. A result is a few
// hundred bytes plus the response body bench kept (--max-body, 0 by default), so a longer
// record means the file is not a results file; the bound keeps rejecting it cheap.
const MaxRecordBytes = 8 << 20

// ReadFiles streams every result of the named files into fn, file after file; "-" reads
// stdin. The *Result passed to fn is reused between calls. A results file that is missing,
// unreadable, in no vegeta encoding or broken at a named result is an input error
// (inputerr.Err).
func ReadFiles(ctx context.Context, paths []string, stdin io.Reader, fn func(*vegeta.Result)) error {
	for _, p := range paths {
		if err := readFile(ctx, p, stdin, fn); err != nil {
			return err
		}
	}
	return nil
}

func readFile(ctx context.Context, path string, stdin io.Reader, fn func(*vegeta.Result)) error {
	rd := stdin
	if path == "-" {
		if stdin == nil {
			return inputerr.Errorf("results file \"-\": no standard input")
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			return inputerr.Errorf("could not open results file: %w", err)
		}
		defer f.Close()
		rd = f
	}
	return Read(ctx, path, rd, fn)
}

// Read streams the results of one reader into fn; name labels errors. An empty input holds
// no results (an attack interrupted at once) and is not an error. A JSON-lines file whose
// last line lacks its newline still gives that result; a last line cut short is an error
// naming the line, never a result silently lost. Cancelling ctx stops the read with ctx's
// error.
func Read(ctx context.Context, name string, rd io.Reader, fn func(*vegeta.Result)) error {
	br := bufio.NewReaderSize(rd, 256<<10)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	} else if err != nil {
		return inputerr.Errorf("could not read results file %q: %w", name, err)
	}
	dec, unit := sniff(br)
	if dec == nil {
		return inputerr.Errorf("results file %q is not in vegeta's gob, JSON or CSV encoding", name)
	}
	var res vegeta.Result
	for n := 1; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		// Subtleness ahead! gob leaves fields that are zero in the stream untouched, so a
		// reused Result would keep the previous result's Error or Code: clear it first.
		res = vegeta.Result{}
		if err := dec.Decode(&res); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return inputerr.Errorf("results file %q: %s %d: %w", name, unit, n, err)
		}
		fn(&res)
	}
}

// sniff picks the encoding and returns its decoder and what one record is called in errors:
// gob when its decoder reads a first result (gob's first byte can be anything), else JSON
// lines for a stream starting with '{', else CSV for one starting with a digit (vegeta's CSV
// starts with a UNIX timestamp). Every decoder reads through a bound on one record
// (MaxRecordBytes), so a large file in no encoding is refused cheaply instead of buffered
// whole, as vegeta.DecoderFor does with everything its three attempts read.
func sniff(src *bufio.Reader) (vegeta.Decoder, string) {
	first, err := src.Peek(1)
	if err != nil {
		return nil, ""
	}
	newGob := func(r io.Reader) vegeta.Decoder {
		return vegeta.NewDecoder(&gobFrames{r: bufio.NewReader(r), max: MaxRecordBytes})
	}
	var buf bytes.Buffer
	if newGob(io.TeeReader(src, &buf)).Decode(&vegeta.Result{}) == nil {
		return newGob(io.MultiReader(&buf, src)), "result"
	}
	rest := io.MultiReader(&buf, src)
	switch c := first[0]; {
	case c == '{':
		return newJSONLines(rest), "line"
	case c >= '0' && c <= '9':
		return vegeta.NewCSVDecoder(&lineLimit{r: rest, max: MaxRecordBytes}), "result"
	}
	return nil, ""
}

// errRecordTooLong is a record longer than MaxRecordBytes.
var errRecordTooLong = fmt.Errorf("longer than %d MiB: not a results file", MaxRecordBytes>>20)

// lineLimit fails a read once a line grows past max bytes.
type lineLimit struct {
	r   io.Reader
	max int
	run int // bytes since the last newline
}

func (l *lineLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i, c := range p[:n] {
		if c == '\n' {
			l.run = 0
			continue
		}
		if l.run++; l.run > l.max {
			return i, errRecordTooLong
		}
	}
	return n, err
}

// newJSONLines decodes vegeta's JSON lines one bounded line at a time. vegeta's own decoder
// drops a last line without its newline, and its JSON lexer answers io.EOF for a line cut
// short, which reads as a clean end: here a complete last line is a result and a cut one an
// error.
func newJSONLines(r io.Reader) vegeta.Decoder {
	br := bufio.NewReaderSize(r, 64<<10)
	feed := &lineFeed{}
	dec := vegeta.NewJSONDecoder(feed)
	var line []byte
	return func(res *vegeta.Result) error {
		line = line[:0]
		for {
			frag, err := br.ReadSlice('\n')
			if len(line)+len(frag) > MaxRecordBytes {
				return errRecordTooLong
			}
			line = append(line, frag...)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) && len(line) > 0 {
				break
			}
			if err != nil {
				return err
			}
			break
		}
		cut := line[len(line)-1] != '\n'
		if cut {
			line = append(line, '\n')
		}
		feed.b = line
		err := dec.Decode(res)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && cut {
			return fmt.Errorf("cut short (the file ends inside it, without a newline): %w", err)
		}
		return err
	}
}

// lineFeed hands vegeta's JSON decoder exactly the line newJSONLines read.
type lineFeed struct{ b []byte }

func (f *lineFeed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// gobFrames passes a gob stream through, refusing a message whose declared length exceeds
// max before gob allocates a buffer for it (gob alone accepts up to 1 GiB).
type gobFrames struct {
	r       *bufio.Reader
	max     uint64
	left    uint64 // payload bytes of the current message still to pass
	pending []byte // header bytes still to pass
}

func (g *gobFrames) Read(p []byte) (int, error) {
	if len(g.pending) == 0 && g.left == 0 {
		if err := g.header(); err != nil {
			return 0, err
		}
	}
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	if uint64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, err := g.r.Read(p)
	g.left -= uint64(n)
	if errors.Is(err, io.EOF) && g.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// header reads a message length, encoded as gob encodes an unsigned integer: one byte
// below 128, else the negated byte count followed by the big-endian bytes.
func (g *gobFrames) header() error {
	b, err := g.r.ReadByte()
	if err != nil {
		return err
	}
	hdr := []byte{b}
	n := uint64(b)
	if b >= 0x80 {
		k := int(-int8(b))
		if k > 8 {
			return errors.New("gob: invalid message length")
		}
		n = 0
		for range k {
			c, err := g.r.ReadByte()
			if err != nil {
				return io.ErrUnexpectedEOF
			}
			hdr = append(hdr, c)
			n = n<<8 | uint64(c)
		}
	}
	if n > g.max {
		return fmt.Errorf("gob message of %d bytes is %w", n, errRecordTooLong)
	}
	g.pending, g.left = hdr, n
	return nil
}
