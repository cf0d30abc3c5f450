package train

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
)

// SynthOptions configures Synth.
type SynthOptions struct {
	Rows int
	Seed int64
}

// The planted signal of synthetic data. A row is delayed with probability
// sigmoid(SynthIntercept + SynthOrigin[origin] + SynthMonth[month] + SynthWeekday[day_of_week]
// + SynthHourSlope*(hour-12)), where hour is the scheduled departure hour. Effects not listed
// are zero. data/README.md documents the same numbers.
var (
	SynthIntercept = -2.2
	SynthOrigin    = map[string]float64{"ATL": 0, "DTW": -0.2, "JFK": 0.5, "MSP": -0.3, "SEA": -0.5}
	SynthMonth     = map[int]float64{1: 0.2, 6: 0.3, 7: 0.4, 12: 0.35}
	SynthWeekday   = map[int]float64{5: 0.25, 6: -0.2}
	SynthHourSlope = 0.08
)

var synthAirports = []struct {
	code string
	id   int
}{{"ATL", 10397}, {"DTW", 11433}, {"JFK", 12478}, {"MSP", 13487}, {"SEA", 14747}}

// synthHeader is the BTS on-time header of flightdata.csv, trailing empty column included.
const synthHeader = `"YEAR","QUARTER","MONTH","DAY_OF_MONTH","DAY_OF_WEEK","UNIQUE_CARRIER","TAIL_NUM","FL_NUM","ORIGIN_AIRPORT_ID","ORIGIN","DEST_AIRPORT_ID","DEST","CRS_DEP_TIME","DEP_TIME","DEP_DELAY","DEP_DEL15","CRS_ARR_TIME","ARR_TIME","ARR_DELAY","ARR_DEL15","CANCELLED","DIVERTED","CRS_ELAPSED_TIME","ACTUAL_ELAPSED_TIME","DISTANCE",`

// Synth writes synthetic flights of 2016 in the layout of flightdata.csv, with the planted
// delay signal above, 1 % cancelled and 0.5 % diverted rows. The same seed writes the same
// bytes.
func Synth(w io.Writer, o SynthOptions) error {
	if o.Rows < 1 {
		return errors.New("--rows must be at least 1")
	}
	rng := newRand(o.Seed)
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(synthHeader + "\n")
	start := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
	var b []byte
	for i := 0; i < o.Rows; i++ {
		day := start.AddDate(0, 0, rng.IntN(366))
		month, dom := int(day.Month()), day.Day()
		dow := int(day.Weekday())
		if dow == 0 {
			dow = 7
		}
		oi := rng.IntN(len(synthAirports))
		di := (oi + 1 + rng.IntN(len(synthAirports)-1)) % len(synthAirports)
		org, dst := synthAirports[oi], synthAirports[di]
		hour := 6 + rng.IntN(17)
		minute := 5 * rng.IntN(12)
		crs := hour*100 + minute
		block := 90 + rng.IntN(240)
		z := SynthIntercept + SynthOrigin[org.code] + SynthMonth[month] + SynthWeekday[dow] + SynthHourSlope*float64(hour-12)
		delayed := rng.Float64() < model.Sigmoid(z)
		cancelled := rng.Float64() < 0.01
		diverted := !cancelled && rng.Float64() < 0.005

		b = b[:0]
		b = append(b, "2016,"...)
		b = strconv.AppendInt(b, int64((month-1)/3+1), 10)
		b = appendInts(b, month, dom, dow)
		b = fmt.Appendf(b, `,"DL","N%03dDN","%d",%d,"%s",%d,"%s","%04d",`, rng.IntN(1000), 100+rng.IntN(2900), org.id, org.code, dst.id, dst.code, crs)
		arrCRS := addMinutes(crs, block)
		depDelay := rng.IntN(10) - 3
		if delayed {
			depDelay = 15 + int(rng.ExpFloat64()*40)
		}
		switch {
		case cancelled:
			b = fmt.Appendf(b, `"",,,"%04d","",,,1.00,0.00,%d.00,,%d.00,`, arrCRS, block, block*8)
		default:
			arrDelay := depDelay + rng.IntN(11) - 5
			if delayed && arrDelay < 15 {
				arrDelay = 15
			}
			if !delayed && arrDelay >= 15 {
				arrDelay = 14
			}
			arrDel15, arrTime, arrDelayField, elapsed := "0.00", fmt.Sprintf(`"%04d"`, addMinutes(arrCRS, arrDelay)), fmt.Sprintf("%d.00", arrDelay), fmt.Sprintf("%d.00", block+arrDelay-depDelay)
			if delayed {
				arrDel15 = "1.00"
			}
			div := "0.00"
			if diverted {
				arrDel15, arrTime, arrDelayField, elapsed, div = "", `""`, "", "", "1.00"
			}
			b = fmt.Appendf(b, `"%04d",%d.00,%s,"%04d",%s,%s,%s,0.00,%s,%d.00,%s,%d.00,`,
				addMinutes(crs, depDelay), depDelay, flag15(depDelay), arrCRS, arrTime, arrDelayField, arrDel15, div, block, elapsed, block*8)
		}
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func appendInts(b []byte, xs ...int) []byte {
	for _, x := range xs {
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(x), 10)
	}
	return b
}

func flag15(delay int) string {
	if delay >= 15 {
		return "1.00"
	}
	return "0.00"
}

// addMinutes adds minutes to an hhmm clock time, wrapping at midnight.
func addMinutes(hhmm, minutes int) int {
	t := (hhmm/100*60 + hhmm%100 + minutes) % (24 * 60)
	if t < 0 {
		t += 24 * 60
	}
	return t/60*100 + t%60
}

// SynthFile writes o.Rows synthetic rows to path atomically, or to stdout when path is "" or
// "-". Fewer than one row or a path in no directory is an input error.
func SynthFile(path string, o SynthOptions, stdout io.Writer) error {
	if o.Rows < 1 {
		return inputerr.Errorf("--rows must be at least 1, got %d", o.Rows)
	}
	if path == "" || path == "-" {
		return Synth(stdout, o)
	}
	if err := checkWritable(path); err != nil {
		return inputerr.Wrap(err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return Synth(w, o) })
}
