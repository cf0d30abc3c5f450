package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/inputerr"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// Run attacks the targets opts describes and writes the report to out. Progress (when
// opts.Progress) and warnings go to errOut. Cancelling ctx (Ctrl-C) stops the attack; the
// report, the results file and the plots still cover every result received.
func Run(ctx context.Context, opts Options, out, errOut io.Writer) error {
	rep, err := Attack(ctx, opts, errOut)
	if rep == nil {
		return err
	}
	reporter, rerr := NewReporter(opts.Output, rep)
	if rerr != nil {
		return rerr
	}
	if rerr := reporter(out); rerr != nil {
		return fmt.Errorf("could not write report: %w", rerr)
	}
	return err
}

// Attack runs one attack and returns its report. It returns a nil report only when the
// attack could not start (bad input, unreachable target); a non-nil report with an error
// means the attack ran but an output file could not be written.
func Attack(ctx context.Context, opts Options, errOut io.Writer) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	tgts, err := opts.loadTargets()
	if err != nil {
		return nil, err
	}
	if opts.Preflight {
		if err := preflight(ctx, tgts, opts.Timeout); err != nil {
			return nil, err
		}
	}
	sk, err := newSinks(opts)
	if err != nil {
		return nil, err
	}
	pl := opts.Sender.plan(opts.Rate)
	client, closeIdle := newClient(opts.Sender, pl, tgts)
	defer closeIdle()

	name := opts.Name
	if name == "" {
		name = DefaultName
	}
	stopProgress := func() {}
	if opts.Progress {
		stopProgress = startProgress(errOut, sk, opts.Duration, time.Now)
	}
	interrupted := attack(ctx, newAttacker(opts.Sender, pl, client), vegeta.NewStaticTargeter(tgts...), opts.Rate, opts.Duration, name, sk.add)
	stopProgress()

	rep := sk.sum.Report(opts.Buckets, opts.Rate)
	rep.Target = describeTargets(tgts)
	rep.Mode = describeMode(opts, pl, client)
	rep.Interrupted = interrupted
	return &rep, sk.close()
}

// attack streams every result of one vegeta attack into add and reports whether ctx ended
// it early. vegeta's Attacker is single-use, so each call gets a fresh one.
func attack(ctx context.Context, atk *vegeta.Attacker, tr vegeta.Targeter, rate Rate, du time.Duration, name string, add func(*vegeta.Result)) (interrupted bool) {
	results := atk.Attack(tr, rate.pacer(), du, name)
	done := ctx.Done()
	for {
		select {
		case <-done:
			// Stop the pacer; in-flight requests end within --timeout and still arrive.
			atk.Stop()
			interrupted, done = true, nil
		case r, ok := <-results:
			if !ok {
				return interrupted
			}
			add(r)
		}
	}
}

func newAttacker(o Sender, pl plan, client *http.Client) *vegeta.Attacker {
	return vegeta.NewAttacker(
		vegeta.Workers(pl.workers),
		vegeta.MaxWorkers(pl.maxWorkers),
		vegeta.MaxBody(o.MaxBody),
		// Client replaces the whole client, transport included, so it comes before the
		// options that only touch the client and after none that touch the transport.
		vegeta.Client(client),
		vegeta.Redirects(vegeta.DefaultRedirects),
	)
}

// newClient builds the HTTP client: the fast HTTP/1.1 transport when every target is plain
// http:// and nothing asks for net/http, otherwise net/http configured as vegeta does.
func newClient(o Sender, pl plan, tgts []vegeta.Target) (*http.Client, func()) {
	conns := pl.conns
	if useFast(o, tgts) {
		tr := newFastTransport(o.Timeout, o.KeepAlive, conns, int(pl.workers))
		return &http.Client{Transport: tr}, tr.CloseIdleConnections
	}
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: o.Insecure}, //nolint:gosec // --insecure is the user's explicit choice
		MaxIdleConnsPerHost: vegeta.DefaultConnections,
		MaxConnsPerHost:     conns,
		DisableKeepAlives:   !o.KeepAlive,
	}
	if conns > 0 {
		tr.MaxIdleConnsPerHost = conns
	}
	tr.Protocols = new(http.Protocols)
	if o.HTTP2 {
		// h2 over TLS by ALPN, and h2c (HTTP/2 without TLS, vegeta's -h2c) for http:// URLs.
		tr.Protocols.SetHTTP2(true)
		tr.Protocols.SetUnencryptedHTTP2(anyScheme(tgts, "http"))
		tr.ForceAttemptHTTP2 = true
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	c := &http.Client{Transport: tr, Timeout: o.Timeout}
	return c, c.CloseIdleConnections
}

func useFast(o Sender, tgts []vegeta.Target) bool {
	if o.Client == "std" || o.HTTP2 {
		return false
	}
	for _, t := range tgts {
		u, err := url.Parse(t.URL)
		if err != nil || u.Scheme != "http" {
			return false
		}
		if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
			return false
		}
		if len(t.Header.Values("Expect")) > 0 {
			return false
		}
	}
	return true
}

func anyScheme(tgts []vegeta.Target, scheme string) bool {
	for _, t := range tgts {
		if u, err := url.Parse(t.URL); err == nil && u.Scheme == scheme {
			return true
		}
	}
	return false
}

func describeTargets(tgts []vegeta.Target) string {
	first := tgts[0].Method + " " + tgts[0].URL
	distinct := map[string]bool{}
	for _, t := range tgts {
		distinct[t.Method+" "+t.URL] = true
	}
	switch {
	case len(distinct) > 1:
		first += fmt.Sprintf(" and %d more targets (%d in rotation)", len(distinct)-1, len(tgts))
	case len(tgts) > 1:
		first += fmt.Sprintf(" (%d bodies in rotation)", len(tgts))
	}
	return first
}

func describeMode(o Options, pl plan, c *http.Client) string {
	w, mw := pl.workers, pl.maxWorkers
	client := "net/http client"
	if _, ok := c.Transport.(*fastTransport); ok {
		client = "fast HTTP/1.1 client"
	} else if o.HTTP2 {
		client = "net/http client, HTTP/2"
	}
	ka := "keep-alive"
	if !o.KeepAlive {
		ka = "no keep-alive"
	}
	du := o.Duration.String()
	if o.Duration == 0 {
		du = "until interrupted"
	}
	if o.Rate.IsMax() {
		return fmt.Sprintf("max rate for %s, %d workers, %d connections, %s, timeout %s, %s", du, w, pl.conns, ka, o.Timeout, client)
	}
	conns := "no connection cap"
	if n := pl.conns; n > 0 {
		conns = fmt.Sprintf("%d connections", n)
	}
	return fmt.Sprintf("constant rate %s for %s, %d-%d workers, %s, %s, timeout %s, %s", o.Rate, du, w, mw, conns, ka, o.Timeout, client)
}

// sinks fans every result out to the summary and the optional outputs.
type sinks struct {
	sum    Summary
	series *timeSeries
	plot   *plot.Plot
	res    *atomicfile.File
	enc    vegeta.Encoder
	encErr error
	opts   Options
	// sent and failed are read by the progress line while the attack runs.
	sent, failed atomic.Uint64
}

func newSinks(o Options) (*sinks, error) {
	sk := &sinks{opts: o}
	if o.Results != "" {
		f, err := atomicfile.Create(o.Results, 0o644)
		if err != nil {
			return nil, inputerr.Errorf("--results: %w", err)
		}
		sk.res = f
		sk.enc = vegeta.NewEncoder(f)
	}
	if o.Plot != "" {
		if err := checkWritableDir(filepath.Dir(o.Plot)); err != nil {
			sk.abort()
			return nil, inputerr.Errorf("--plot: %w", err)
		}
		sk.plot = plot.New(plot.Title("delayctl bench: "+o.URL+o.Targets), plot.Downsample(4000), plot.Label(plot.ErrorLabeler))
	}
	if o.PNG != "" {
		if err := os.MkdirAll(o.PNG, 0o755); err != nil {
			sk.abort()
			return nil, inputerr.Errorf("--png: %w", err)
		}
		sk.series = newTimeSeries()
	}
	return sk, nil
}

func (sk *sinks) add(r *vegeta.Result) {
	sk.sum.Add(r)
	sk.sent.Add(1)
	if r.Code < 200 || r.Code >= 400 {
		sk.failed.Add(1)
	}
	if sk.series != nil {
		sk.series.Add(r)
	}
	if sk.plot != nil {
		_ = sk.plot.Add(r)
	}
	if sk.enc != nil && sk.encErr == nil {
		sk.encErr = sk.enc.Encode(r)
	}
}

func (sk *sinks) abort() {
	if sk.res != nil {
		sk.res.Abort()
	}
}

// close finishes every output file; it reports the first failure but finishes the others.
func (sk *sinks) close() error {
	var errs []error
	if sk.res != nil {
		if sk.encErr != nil {
			sk.res.Abort()
			errs = append(errs, fmt.Errorf("could not write results %q: %w", sk.opts.Results, sk.encErr))
		} else if err := sk.res.Commit(); err != nil {
			errs = append(errs, fmt.Errorf("could not write results %q: %w", sk.opts.Results, err))
		}
	}
	if sk.plot != nil {
		sk.plot.Close()
		if err := atomicfile.Write(sk.opts.Plot, 0o644, func(w io.Writer) error { _, err := sk.plot.WriteTo(w); return err }); err != nil {
			errs = append(errs, fmt.Errorf("plot: %w", err))
		}
	}
	if sk.series != nil {
		if err := WritePNGs(sk.opts.PNG, &sk.sum, sk.series, sk.opts.Buckets); err != nil {
			errs = append(errs, fmt.Errorf("could not write PNGs to %q: %w", sk.opts.PNG, err))
		}
	}
	return errors.Join(errs...)
}

func checkWritableDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%q is not a directory", dir)
	}
	return nil
}

// startProgress redraws one status line on w every second until the returned func is called.
func startProgress(w io.Writer, sk *sinks, total time.Duration, now func() time.Time) func() {
	start := now()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprint(w, "\r\033[K"+progressLine(now().Sub(start), total, sk.sent.Load(), sk.failed.Load()))
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

func progressLine(elapsed, total time.Duration, sent, failed uint64) string {
	of := ""
	if total > 0 {
		of = " of " + fmtSecs(total)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(sent) / s
	}
	return fmt.Sprintf("%s%s  done %d  %.1f req/s  errors %d", fmtSecs(elapsed), of, sent, rate, failed)
}
