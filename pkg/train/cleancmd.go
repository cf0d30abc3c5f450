package train

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/go-gota/gota/dataframe"
	"github.com/go-gota/gota/series"
)

// CleanOptions configures RunClean.
type CleanOptions struct {
	// DataPath is one flight file; DataPaths, when set, several files or globs.
	DataPath  string
	DataPaths []string
	// MaxLineBytes bounds one CSV line; 0 means DefaultMaxLineBytes.
	MaxLineBytes int
	ConfigPath   string
	// OutPath receives the cleaned CSV: the canonical fields and a 0/1 "delayed" column.
	OutPath string
	// Format is "text" (the default) or "json" for the report on stdout.
	Format string
	// Describe adds per-column summary statistics of the cleaned rows.
	Describe bool
}

// Validate checks the options.
func (o *CleanOptions) Validate() error {
	if o.DataPath == "" && len(o.DataPaths) == 0 {
		return errors.New("--data is required: the flight CSV to clean")
	}
	if o.MaxLineBytes < 0 {
		return fmt.Errorf("--max-line-bytes must be positive, got %d", o.MaxLineBytes)
	}
	if o.Format != "" && o.Format != "text" && o.Format != "json" {
		return fmt.Errorf("--output must be text or json, got %q", o.Format)
	}
	return nil
}

// CleanedHeader is the header of a cleaned CSV.
var CleanedHeader = []string{"month", "day_of_month", "day_of_week", "origin", "dest", "carrier", "crs_dep_time", "delayed"}

// RunClean cleans a flight CSV exactly as training does, optionally writes the cleaned rows,
// and reports what was kept, dropped and imputed.
func RunClean(ctx context.Context, o CleanOptions, out io.Writer) (*CleanReport, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	defer debug.SetGCPercent(debug.SetGCPercent(trainGCPercent))
	cfg := DefaultConfig()
	if o.ConfigPath != "" {
		var err error
		if cfg, err = LoadConfig(o.ConfigPath); err != nil {
			return nil, inputerr.Wrap(err)
		}
	}
	args := o.DataPaths
	if len(args) == 0 {
		args = []string{o.DataPath}
	}
	inputs, err := ExpandInputs(args)
	if err != nil {
		return nil, err
	}
	if o.OutPath != "" {
		if err := checkWritable(o.OutPath); err != nil {
			return nil, inputerr.Wrap(err)
		}
		if err := checkOutputs(append(slices.Clone(inputs), o.ConfigPath), map[string]string{"--out": o.OutPath}); err != nil {
			return nil, err
		}
	}
	ds, rep, err := cleanFiles(inputs, cfg, nil, o.MaxLineBytes)
	if err != nil {
		return rep, inputerr.Wrap(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.OutPath != "" {
		if err := atomicfile.Write(o.OutPath, 0o644, func(w io.Writer) error { return writeCleaned(w, ds) }); err != nil {
			return nil, err
		}
	}
	if o.Format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return rep, enc.Encode(rep)
	}
	if err := writeCleanReport(out, rep, strings.Join(inputs, ", "), o.OutPath); err != nil {
		return nil, err
	}
	if o.Describe {
		fmt.Fprintln(out)
		fmt.Fprintln(out, describe(ds).String())
	}
	return rep, nil
}

func writeCleaned(w io.Writer, ds *Dataset) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CleanedHeader); err != nil {
		return err
	}
	rec := make([]string, len(CleanedHeader))
	for i := range ds.Len() {
		f := ds.Flight(i)
		rec[0], rec[1], rec[2] = strconv.Itoa(f.Month), strconv.Itoa(f.DayOfMonth), strconv.Itoa(f.DayOfWeek)
		rec[3], rec[4], rec[5] = f.Origin, f.Dest, f.Carrier
		rec[6] = fmt.Sprintf("%04d", f.CRSDepTime)
		rec[7] = "0"
		if ds.Delayed[i] {
			rec[7] = "1"
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeCleanReport(w io.Writer, r *CleanReport, in, out string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "read\t%s\n", in)
	fmt.Fprintf(tw, "rows read\t%d\n", r.RowsRead)
	fmt.Fprintf(tw, "rows kept\t%d\t(%d delayed, %.1f%%)\n", r.RowsKept, r.Delayed, 100*float64(r.Delayed)/float64(max(r.RowsKept, 1)))
	reasons := make([]string, 0, len(r.Dropped))
	for k := range r.Dropped {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	total := 0
	for _, k := range reasons {
		total += r.Dropped[k]
	}
	fmt.Fprintf(tw, "rows dropped\t%d\n", total)
	for _, k := range reasons {
		fmt.Fprintf(tw, "  %s\t%d\n", k, r.Dropped[k])
	}
	for _, is := range r.Invalid {
		fmt.Fprintf(tw, "    row %d\tcolumn %s = %q: %s\n", is.Row, is.Column, is.Value, is.Reason)
	}
	if n := r.Dropped[DropInvalid]; n > len(r.Invalid) {
		fmt.Fprintf(tw, "    ...\t%d more\n", n-len(r.Invalid))
	}
	fields := make([]string, 0, len(r.Imputed))
	for k := range r.Imputed {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	if len(fields) == 0 {
		fmt.Fprintf(tw, "values imputed\t0\n")
	}
	for _, k := range fields {
		im := r.Imputed[k]
		fmt.Fprintf(tw, "values imputed\t%s: %d\t(%s = %s)\n", k, im.Count, im.Method, im.Value)
	}
	if out != "" {
		fmt.Fprintf(tw, "wrote\t%s\n", out)
	}
	return tw.Flush()
}

// describe summarises the cleaned columns with gota (count, mean, std, quartiles for the
// numeric ones; gota's Describe leaves string columns blank), the quick look a pandas user
// expects from df.describe().
func describe(ds *Dataset) dataframe.DataFrame {
	n := ds.Len()
	month, dom, dow, dep, delayed := make([]int, n), make([]int, n), make([]int, n), make([]int, n), make([]int, n)
	origin, dest, carrier := make([]string, n), make([]string, n), make([]string, n)
	for i := range n {
		f := ds.Flight(i)
		month[i], dom[i], dow[i], dep[i] = f.Month, f.DayOfMonth, f.DayOfWeek, f.CRSDepTime
		origin[i], dest[i], carrier[i] = f.Origin, f.Dest, f.Carrier
		if ds.Delayed[i] {
			delayed[i] = 1
		}
	}
	df := dataframe.New(
		series.New(month, series.Int, "month"),
		series.New(dom, series.Int, "day_of_month"),
		series.New(dow, series.Int, "day_of_week"),
		series.New(origin, series.String, "origin"),
		series.New(dest, series.String, "dest"),
		series.New(carrier, series.String, "carrier"),
		series.New(dep, series.Int, "crs_dep_time"),
		series.New(delayed, series.Int, "delayed"),
	)
	return df.Describe()
}
