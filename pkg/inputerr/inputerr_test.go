package inputerr_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/delayctl/delayctl/pkg/inputerr"
)

func TestMarks(t *testing.T) {
	tests := map[string]struct {
		err       error
		wantInput bool
		wantMsg   string
	}{
		"Wrap keeps the message and marks it.": {err: inputerr.Wrap(errors.New("bad flag")), wantInput: true, wantMsg: "bad flag"},
		"Errorf formats and marks.":            {err: inputerr.Errorf("--rate %d: too high", 7), wantInput: true, wantMsg: "--rate 7: too high"},
		"A plain error is not an input error.": {err: errors.New("connection refused"), wantMsg: "connection refused"},
		"Wrapping twice changes nothing.":      {err: inputerr.Wrap(inputerr.Errorf("x")), wantInput: true, wantMsg: "x"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := errors.Is(tt.err, inputerr.Err); got != tt.wantInput {
				t.Errorf("errors.Is(err, inputerr.Err) = %v, want %v", got, tt.wantInput)
			}
			if tt.err.Error() != tt.wantMsg {
				t.Errorf("message %q, want %q", tt.err.Error(), tt.wantMsg)
			}
		})
	}
	if inputerr.Wrap(nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
}

func TestWrapKeepsTheChain(t *testing.T) {
	err := inputerr.Errorf("could not open: %w", fs.ErrNotExist)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not match fs.ErrNotExist", err)
	}
	var pe *fs.PathError
	err = inputerr.Wrap(&fs.PathError{Op: "open", Path: "x", Err: fs.ErrPermission})
	if !errors.As(err, &pe) || pe.Path != "x" {
		t.Errorf("errors.As lost the *fs.PathError of %v", err)
	}
}
