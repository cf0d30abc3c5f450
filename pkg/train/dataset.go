package train

import (
	"fmt"
	"math"

	"github.com/delayctl/delayctl/pkg/model"
)

// Dataset is a cleaned flight table in a compact column layout: 12 bytes per row whatever
// the CSV's width. Calendar fields are bytes, the departure time two bytes, and origin, dest
// and carrier two-byte indexes into per-field dictionaries. Every fit, fold, split and metric
// runs over these columns, so training memory grows by a few bytes per row rather than by a
// struct and a design-matrix row per row.
type Dataset struct {
	Month, DayOfMonth, DayOfWeek []uint8
	DepTime                      []uint16
	// Origin, Dest and Carrier are ids into per-field dictionaries (see Flight).
	Origin, Dest, Carrier []uint16
	Delayed               []bool
	// Years holds each row's year when every input has the configured year column (2 more
	// bytes a row), else nil; only the time-ordered evaluation reads it.
	Years []uint16

	dicts [3]dict // origin, dest, carrier
}

// BytesPerRow is the size of one row of a Dataset.
const BytesPerRow = 3*1 + 2 + 3*2 + 1

// Missing-value sentinels in the compact columns, replaced by imputation or dropped.
const (
	missingSmall = 0 // month, day of month and day of week start at 1
	missingWide  = math.MaxUint16
)

// String fields, as indexes of Dataset.dicts.
const (
	strOrigin = iota
	strDest
	strCarrier
)

var strFieldNames = [3]string{"origin", "dest", "carrier"}

// dict interns the values of one string field.
type dict struct {
	ids    map[string]uint16
	values []string
}

func (d *dict) id(field, s string) (uint16, error) {
	if id, ok := d.ids[s]; ok {
		return id, nil
	}
	if len(d.values) >= missingWide {
		return 0, fmt.Errorf("more than %d distinct %s values", missingWide, field)
	}
	if d.ids == nil {
		d.ids = map[string]uint16{}
	}
	id := uint16(len(d.values))
	s = string([]byte(s)) // detach from the CSV line
	d.ids[s] = id
	d.values = append(d.values, s)
	return id, nil
}

// Len is the number of rows.
func (d *Dataset) Len() int { return len(d.Delayed) }

// Positives counts the delayed rows.
func (d *Dataset) Positives() int {
	n := 0
	for _, y := range d.Delayed {
		if y {
			n++
		}
	}
	return n
}

// Flight returns row i as a model.Flight. It does not allocate.
func (d *Dataset) Flight(i int) model.Flight {
	return model.Flight{
		Month: int(d.Month[i]), DayOfMonth: int(d.DayOfMonth[i]), DayOfWeek: int(d.DayOfWeek[i]),
		Origin:     d.dicts[strOrigin].values[d.Origin[i]],
		Dest:       d.dicts[strDest].values[d.Dest[i]],
		Carrier:    d.dicts[strCarrier].values[d.Carrier[i]],
		CRSDepTime: int(d.DepTime[i]),
	}
}

// dictValues returns the dictionary of a string field: its values by id.
func (d *Dataset) dictValues(field int) []string { return d.dicts[field].values }

func (d *Dataset) strColumn(field int) []uint16 {
	switch field {
	case strOrigin:
		return d.Origin
	case strDest:
		return d.Dest
	}
	return d.Carrier
}

// appendRow adds one parsed row; missing fields (per the FieldSet) get the sentinels.
func (d *Dataset) appendRow(f *model.Flight, missing model.FieldSet, delayed bool) error {
	small := func(v int, bit model.FieldSet) uint8 {
		if missing&bit != 0 {
			return missingSmall
		}
		return uint8(v) // Validate or imputation bounds the value; see clean
	}
	var ids [3]uint16
	for k, s := range [3]string{f.Origin, f.Dest, f.Carrier} {
		if missing&(model.FieldOrigin<<k) != 0 {
			ids[k] = missingWide
			continue
		}
		id, err := d.dicts[k].id(strFieldNames[k], s)
		if err != nil {
			return err
		}
		ids[k] = id
	}
	dep := uint16(f.CRSDepTime)
	if missing&model.FieldCRSDepTime != 0 {
		dep = missingWide
	}
	d.Month = append(d.Month, small(f.Month, model.FieldMonth))
	d.DayOfMonth = append(d.DayOfMonth, small(f.DayOfMonth, model.FieldDayOfMonth))
	d.DayOfWeek = append(d.DayOfWeek, small(f.DayOfWeek, model.FieldDayOfWeek))
	d.DepTime = append(d.DepTime, dep)
	d.Origin = append(d.Origin, ids[0])
	d.Dest = append(d.Dest, ids[1])
	d.Carrier = append(d.Carrier, ids[2])
	d.Delayed = append(d.Delayed, delayed)
	return nil
}

// keep moves row i to position j (j <= i), for compaction after imputation.
func (d *Dataset) keep(j, i int) {
	d.Month[j], d.DayOfMonth[j], d.DayOfWeek[j], d.DepTime[j] = d.Month[i], d.DayOfMonth[i], d.DayOfWeek[i], d.DepTime[i]
	d.Origin[j], d.Dest[j], d.Carrier[j], d.Delayed[j] = d.Origin[i], d.Dest[i], d.Carrier[i], d.Delayed[i]
	if d.Years != nil {
		d.Years[j] = d.Years[i]
	}
}

func (d *Dataset) truncate(n int) {
	d.Month, d.DayOfMonth, d.DayOfWeek, d.DepTime = d.Month[:n], d.DayOfMonth[:n], d.DayOfWeek[:n], d.DepTime[:n]
	d.Origin, d.Dest, d.Carrier, d.Delayed = d.Origin[:n], d.Dest[:n], d.Carrier[:n], d.Delayed[:n]
	if d.Years != nil {
		d.Years = d.Years[:n]
	}
}
