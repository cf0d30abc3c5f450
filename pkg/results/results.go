// Package results reads vegeta results files: gob, JSON lines or CSV, sniffed per file as
// vegeta's own commands do, many files one after another, streamed one result at a time so
// that memory does not grow with the file. It is the one reader behind `delayctl bench
// report` and `delayctl slo report`.
package results

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"

	"github.com/delayctl/delayctl/pkg/inputerr"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

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
// no results (an attack interrupted at once) and is not an error. Cancelling ctx stops the
// read with ctx's error.
func Read(ctx context.Context, name string, rd io.Reader, fn func(*vegeta.Result)) error {
	br := bufio.NewReaderSize(rd, 256<<10)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	} else if err != nil {
		return inputerr.Errorf("could not read results file %q: %w", name, err)
	}
	dec := vegeta.DecoderFor(br)
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
			return inputerr.Errorf("results file %q: result %d: %w", name, n, err)
		}
		fn(&res)
	}
}
