// Package inputerr marks errors the user can fix by changing what they gave delayctl: a flag,
// an environment value, a config file or an input file that is missing or malformed. Packages
// say *that* an error is an input error; cmd/delayctl alone decides what that means for the
// exit code.
package inputerr

import (
	"errors"
	"fmt"
)

// Err is matched, with errors.Is, by every error Wrap or Errorf returns and by typed errors
// that declare themselves input errors (an Is method reporting target == Err).
var Err = errors.New("input error")

type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }

// Unwrap keeps the wrapped chain searchable and adds Err to it.
func (e *inputError) Unwrap() []error { return []error{e.err, Err} }

// Wrap marks err as an input error, keeping its message and chain; Wrap(nil) is nil.
func Wrap(err error) error {
	if err == nil || errors.Is(err, Err) {
		return err
	}
	return &inputError{err}
}

// Errorf formats an input error; %w wraps as in fmt.Errorf.
func Errorf(format string, args ...any) error {
	return &inputError{fmt.Errorf(format, args...)}
}
