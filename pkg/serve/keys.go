package serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
)

// KeysOptions configures `delayctl keys new`.
type KeysOptions struct {
	// Name is recorded beside the hash and shown in logs instead of the key.
	Name string
	// Append is a keys file the new key's line is added to; empty prints the line instead.
	Append string
}

// RunKeysNew makes a fresh API key. With opts.Append it adds the key's hash line to that
// keys file and prints only the key to out; otherwise it prints the key and the line. A bad
// name or a keys file that does not parse is an input error.
func RunKeysNew(opts KeysOptions, out, errOut io.Writer) error {
	if err := ValidKeyName(opts.Name); err != nil {
		return inputerr.Wrap(err)
	}
	key, err := NewKey()
	if err != nil {
		return err
	}
	if opts.Append != "" {
		if err := AppendKey(opts.Append, key, opts.Name); err != nil {
			if errors.Is(err, model.ErrNotRegular) {
				return inputerr.Errorf("--append: %w", err)
			}
			return err
		}
		fmt.Fprintf(errOut, "added the key's hash to %s; the key is shown only now:\n", opts.Append)
		_, err = fmt.Fprintln(out, key)
		return err
	}
	_, err = fmt.Fprintf(out, "# API key: give it to the client; it is shown only now\n%s\n# line for the --auth-keys file\n%s\n",
		key, KeyLine(key, opts.Name))
	return err
}

// RunKeysHash reads a key from the first line of in and prints its keys-file line, so that
// the key stays out of shell history. No key is an input error.
func RunKeysHash(name string, in io.Reader, out io.Writer) error {
	if err := ValidKeyName(name); err != nil {
		return inputerr.Wrap(err)
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) { // a key without a trailing newline ends in io.EOF
		return fmt.Errorf("could not read the key from stdin: %w", err)
	}
	key := strings.TrimSpace(line)
	if key == "" {
		return inputerr.Errorf("no key on stdin: pipe the key in, e.g. printf %%s \"$KEY\" | delayctl keys hash")
	}
	_, err = fmt.Fprintln(out, KeyLine(key, name))
	return err
}
