// Command e2e-check reads a vegeta results file from the rollout test and fails unless every
// request succeeded and the responses came from at least two model versions, in order of time.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

var versionRE = regexp.MustCompile(`"model_version":"([^"]+)"`)

func main() {
	minVersions := flag.Int("min-versions", 2, "distinct model versions the responses must show")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: e2e-check [-min-versions N] results.bin")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *minVersions, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "e2e-check:", err)
		os.Exit(1)
	}
}

type span struct {
	first, last time.Time
	n           int
}

func run(path string, minVersions int, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := vegeta.DecoderFor(bufio.NewReader(f))
	if dec == nil {
		return fmt.Errorf("%s: not a vegeta results file", path)
	}
	codes := map[uint16]int{}
	versions := map[string]*span{}
	var failures []string
	total := 0
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("%s: %w", path, err)
		}
		total++
		codes[r.Code]++
		if r.Code != 200 || r.Error != "" {
			if len(failures) < 10 {
				failures = append(failures, fmt.Sprintf("%s seq %d: code %d %s", r.Timestamp.Format(time.RFC3339Nano), r.Seq, r.Code, r.Error))
			}
			continue
		}
		v := "(no version in body)"
		if m := versionRE.FindSubmatch(r.Body); m != nil {
			v = string(m[1])
		}
		s := versions[v]
		if s == nil {
			s = &span{first: r.Timestamp}
			versions[v] = s
		}
		s.last, s.n = r.Timestamp, s.n+1
	}
	fmt.Fprintf(out, "requests: %d, status codes: %v\n", total, codes)
	names := make([]string, 0, len(versions))
	for v := range versions {
		names = append(names, v)
	}
	sort.Slice(names, func(a, b int) bool { return versions[names[a]].first.Before(versions[names[b]].first) })
	for _, v := range names {
		s := versions[v]
		fmt.Fprintf(out, "model version %-14s %6d responses, %s to %s\n", v, s.n, s.first.Format("15:04:05.000"), s.last.Format("15:04:05.000"))
	}
	for _, f := range failures {
		fmt.Fprintln(out, "failed:", f)
	}
	switch {
	case total == 0:
		return errors.New("no results")
	case codes[200] != total || len(failures) > 0:
		return fmt.Errorf("%d of %d requests failed", total-codes[200], total)
	case len(versions) < minVersions:
		return fmt.Errorf("responses show %d model versions, want at least %d", len(versions), minVersions)
	}
	fmt.Fprintf(out, "PASS: %d requests, 0 failed, %d model versions\n", total, len(versions))
	return nil
}
