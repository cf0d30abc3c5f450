package train

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/delayctl/delayctl/pkg/inputerr"
)

// DefaultMaxLineBytes bounds one physical line of a flight CSV. BTS rows are about 300 bytes
// with every column; a longer line is a corrupt or hostile file, and reading it whole would
// cost memory in proportion to its length.
const DefaultMaxLineBytes = 1 << 20

// ExpandInputs resolves --data arguments: each is a file or a glob (filepath.Match syntax),
// expanded in sorted order. A glob that matches nothing, or a file named twice, is an error.
func ExpandInputs(args []string) ([]string, error) {
	var out []string
	seen := map[string]string{}
	for _, a := range args {
		paths := []string{a}
		if strings.ContainsAny(a, "*?[") {
			m, err := filepath.Glob(a)
			if err != nil {
				return nil, fmt.Errorf("--data %q: %w", a, err)
			}
			if len(m) == 0 {
				return nil, inputerr.Errorf("--data %q matches no file", a)
			}
			sort.Strings(m)
			paths = m
		}
		for _, p := range paths {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("--data %q: %w", p, err)
			}
			if prev, dup := seen[abs]; dup {
				return nil, inputerr.Errorf("--data names %s twice (also as %s): its rows would count twice", p, prev)
			}
			seen[abs] = p
			f, err := os.Open(p)
			if err != nil {
				return nil, inputerr.Errorf("could not open flight data: %w", err)
			}
			f.Close()
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--data is required: the flight CSV to train on")
	}
	return out, nil
}

// checkOutputs refuses any output that is one of the inputs (by name, symlink or hard link)
// or that two outputs share, before anything is read or written.
func checkOutputs(inputs []string, outputs map[string]string) error {
	type file struct {
		flag string
		abs  string
		info os.FileInfo
	}
	var ins []file
	for _, p := range inputs {
		if p == "" {
			continue
		}
		abs, _ := filepath.Abs(p)
		st, _ := os.Stat(p)
		ins = append(ins, file{"input", abs, st})
	}
	flags := make([]string, 0, len(outputs))
	for f := range outputs {
		flags = append(flags, f)
	}
	sort.Strings(flags)
	seen := map[string]string{}
	for _, flag := range flags {
		p := outputs[flag]
		if p == "" {
			continue
		}
		abs, _ := filepath.Abs(p)
		if other, dup := seen[abs]; dup {
			return inputerr.Errorf("%s and %s both write %s", other, flag, p)
		}
		seen[abs] = flag
		st, statErr := os.Stat(p)
		for _, in := range ins {
			if in.abs == abs || (statErr == nil && in.info != nil && os.SameFile(in.info, st)) {
				return inputerr.Errorf("%s %s is also an input: refusing to overwrite it", flag, p)
			}
		}
	}
	return nil
}

// ErrLineTooLong is wrapped when a line exceeds the line limit.
var ErrLineTooLong = errors.New("line too long")

// lineLimitReader fails once a line runs past max bytes, so a file with no newlines cannot
// make the CSV reader buffer it whole. It counts lines for the error.
type lineLimitReader struct {
	r    io.Reader
	max  int
	cur  int // bytes of the current line so far
	line int // 1-based number of the current line
}

func (l *lineLimitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; {
		j := bytes.IndexByte(p[i:n], '\n')
		if j < 0 {
			l.cur += n - i
			break
		}
		l.cur += j
		if l.cur > l.max {
			break
		}
		l.cur = 0
		l.line++
		i += j + 1
	}
	if l.cur > l.max {
		return 0, fmt.Errorf("line %d: %w: more than %d bytes without a newline (the limit is --max-line-bytes)", l.line, ErrLineTooLong, l.max)
	}
	return n, err
}

// input is one opened flight file: its name for messages and a reader of CSV text.
type input struct {
	name string
	r    io.Reader
	// closers run in reverse order when the file is done.
	closers []io.Closer
}

func (in *input) Close() error {
	var first error
	for i := len(in.closers) - 1; i >= 0; i-- {
		if err := in.closers[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// openInput opens a .csv, .csv.gz or .zip (one CSV inside, as BTS monthly downloads) file.
// The raw file bytes go through h, for the model's data checksum. The CSV text has a
// leading UTF-8 byte-order mark removed and its lines bounded by maxLine.
func openInput(path string, h hash.Hash, maxLine int) (*input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, inputerr.Errorf("could not open flight data: %w", err)
	}
	in := &input{name: path, closers: []io.Closer{f}}
	var r io.Reader = f
	if h != nil {
		r = io.TeeReader(f, h)
	}
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".gz"):
		zr, err := gzip.NewReader(bufio.NewReader(r))
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("%s: not a gzip file: %w", path, err)
		}
		in.closers = append(in.closers, zr)
		r = zr
	case strings.HasSuffix(lower, ".zip"):
		zr, err := openZipCSV(f, path, h)
		if err != nil {
			in.Close()
			return nil, err
		}
		in.closers = append(in.closers, zr)
		r = zr
	}
	in.r = textReader(r, maxLine)
	return in, nil
}

// textReader bounds the lines of CSV text to maxLine bytes and drops a leading UTF-8
// byte-order mark, which spreadsheet exports add and which would otherwise stick to the
// first column's name.
func textReader(r io.Reader, maxLine int) io.Reader {
	br := bufio.NewReaderSize(&lineLimitReader{r: r, max: maxLine, line: 1}, 64<<10)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		br.Discard(3)
	}
	return br
}

// openZipCSV opens the one CSV inside a zip archive. The whole archive is hashed first: zip
// reads its directory from the end, so a streaming hash would miss bytes.
func openZipCSV(f *os.File, path string, h hash.Hash) (io.ReadCloser, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if h != nil {
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size())); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: not a zip file: %w", path, err)
	}
	var csvs []*zip.File
	var names []string
	for _, zf := range zr.File {
		names = append(names, zf.Name)
		if strings.HasSuffix(strings.ToLower(zf.Name), ".csv") {
			csvs = append(csvs, zf)
		}
	}
	if len(csvs) != 1 {
		return nil, fmt.Errorf("%s: want exactly one .csv inside the zip, found %d (entries: %s)", path, len(csvs), strings.Join(names, ", "))
	}
	rc, err := csvs[0].Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, csvs[0].Name, err)
	}
	return rc, nil
}
