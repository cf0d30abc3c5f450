package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/delayctl/delayctl/pkg/model"
)

// batch is a decoded prediction request: encoded feature vectors ({"x": ...} or instances
// that are arrays) or named-field flights (instances that are objects). It is pooled, so its
// slices are reused from request to request.
type batch struct {
	vals    []float64 // every vector's values, row after row
	ends    []int     // ends[i] is where row i stops in vals
	flights []model.Flight
	probs   []float64 // the answers, filled by compute
	named   bool      // rows are flights, not vectors
	field   string    // "x" or "instances", for messages
	single  bool      // the request held one bare vector ({"x": [...]}), not a batch
}

func (b *batch) reset() {
	b.vals, b.ends, b.flights, b.probs = b.vals[:0], b.ends[:0], b.flights[:0], b.probs[:0]
	b.named, b.single, b.field = false, false, ""
}

// len is the number of instances.
func (b *batch) len() int {
	if b.named {
		return len(b.flights)
	}
	return len(b.ends)
}

// row returns vector i.
func (b *batch) row(i int) []float64 {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.vals[start:b.ends[i]]
}

// rowName names instance i in messages: x, x[i] or instances[i].
func (b *batch) rowName(i int) string {
	if b.single {
		return b.field
	}
	return b.field + "[" + strconv.Itoa(i) + "]"
}

// decoder is a hand-written reader for the /predict bodies. It is the hot path of the server:
// it parses {"x": [...]} straight into a pooled []float64, with no reflection, no allocation per
// value and an error that names the position and the element at fault.
type decoder struct {
	s        []byte
	i        int
	b        *batch
	maxBatch int
	intern   map[string]string // the model's categories, so known airports cost no allocation
}

// decodePredict parses a /predict body: {"x": [..]}, {"x": [[..], ..]} or
// {"instances": [{flight} | [..], ..]}.
func decodePredict(body []byte, b *batch, maxBatch int, intern map[string]string) error {
	d := decoder{s: body, b: b, maxBatch: maxBatch, intern: intern}
	return d.predictRequest()
}

func (d *decoder) predictRequest() error {
	d.ws()
	if d.i == len(d.s) {
		return badRequest("empty request body: send {\"x\": [...]} or {\"instances\": [...]}")
	}
	if d.s[d.i] != '{' {
		return d.syntax("want a JSON object {\"x\": [...]} or {\"instances\": [...]}")
	}
	seen := ""
	err := d.object(func() string { return "the request" }, func(key string) error {
		if key != "x" && key != "instances" {
			return badRequest("unknown field %q: send {\"x\": [...]} or {\"instances\": [...]}", key)
		}
		if seen != "" {
			if seen == key {
				return badRequest("field %q appears twice", key)
			}
			return badRequest("send either x or instances, not both")
		}
		seen = key
		d.b.field = key
		if key == "x" {
			return d.vectors()
		}
		return d.instances()
	})
	if err != nil {
		return err
	}
	d.ws()
	if d.i != len(d.s) {
		return d.syntax("unexpected data after the JSON object")
	}
	if seen == "" {
		return badRequest("missing field: send {\"x\": [...]} or {\"instances\": [...]}")
	}
	if d.b.len() == 0 {
		return unprocessable("%s is empty: send at least one instance", seen)
	}
	return nil
}

// object reads {"key": value, ...}, calling field for each key with the decoder positioned at
// the value; field must consume the value.
func (d *decoder) object(what func() string, field func(key string) error) error {
	d.i++ // {
	for first := true; ; first = false {
		d.ws()
		if first && d.peek() == '}' {
			d.i++
			return nil
		}
		key, err := d.key()
		if err != nil {
			return err
		}
		d.ws()
		if err := field(key); err != nil {
			return err
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.syntax("want , or } in " + what())
		}
	}
}

// vectors reads the value of x: one vector or an array of vectors.
func (d *decoder) vectors() error {
	if d.peek() != '[' {
		return d.typeError("x", "want an array of numbers or an array of arrays")
	}
	save := d.i
	d.i++
	d.ws()
	switch d.peek() {
	case '[':
		d.i = save
		return d.rows("x")
	case ']':
		d.i++
		return nil
	}
	d.i = save
	d.b.single = true
	return d.vector("x", 0)
}

// rows reads [[..], [..], ..] into the batch.
func (d *decoder) rows(field string) error {
	return d.batchArray(field, func(n int) error {
		if d.peek() != '[' {
			return d.typeError(field+"["+strconv.Itoa(n)+"]", "want an array of numbers")
		}
		return d.vector(field, n)
	})
}

// batchArray reads a JSON array whose elements are instances of the batch: elem reads
// element n at d.i; batchArray checks --max-batch before each one and consumes , and ].
func (d *decoder) batchArray(field string, elem func(n int) error) error {
	d.i++ // [
	for n := 0; ; n++ {
		d.ws()
		if n == 0 && d.peek() == ']' {
			d.i++
			return nil
		}
		if err := d.addRow(); err != nil {
			return err
		}
		if err := elem(n); err != nil {
			return err
		}
		if err := d.next(field); err != nil || d.s[d.i-1] == ']' {
			return err
		}
	}
}

// addRow checks the batch limit before another instance is read.
func (d *decoder) addRow() error {
	if d.b.len() >= d.maxBatch {
		return unprocessable("batch has more than %d instances, the server's --max-batch: split it", d.maxBatch)
	}
	return nil
}

// next consumes the , or ] after an array element.
func (d *decoder) next(field string) error {
	d.ws()
	switch d.peek() {
	case ',':
		d.i++
		return nil
	case ']':
		d.i++
		return nil
	}
	return d.syntax("want , or ] in " + field)
}

// vector reads one [n, n, ...] as row `row` of field.
func (d *decoder) vector(field string, row int) error {
	d.i++ // [
	start := len(d.b.vals)
	// Fast path: one-hot vectors as clients send them, compact single digits ("0,1,0,...]"),
	// read in a tight loop over locals. Anything else goes to the general loop below, which
	// picks up where this one stopped.
	s, i, vals := d.s, d.i, d.b.vals
	for i+1 < len(s) {
		// One unsigned comparison tests for '0' or '1': branching on which digit it is would
		// mispredict at every 1 of a one-hot vector.
		c, next := s[i]-'0', s[i+1]
		if c > 1 || next != ',' && next != ']' {
			break
		}
		vals = append(vals, float64(c))
		i += 2
		if next == ']' {
			d.i, d.b.vals = i, vals
			d.b.ends = append(d.b.ends, len(vals))
			return nil
		}
	}
	d.i, d.b.vals = i, vals
	for col := len(vals) - start; ; col++ {
		d.ws()
		if col == 0 && d.peek() == ']' {
			d.i++
			break
		}
		v, err := d.number(func() string { return d.elemName(field, row, col) })
		if err != nil {
			return err
		}
		d.b.vals = append(d.b.vals, v)
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
			continue
		case ']':
			d.i++
		default:
			return d.syntax("want , or ] after " + d.elemName(field, row, col))
		}
		break
	}
	d.b.ends = append(d.b.ends, len(d.b.vals))
	return nil
}

func (d *decoder) elemName(field string, row, col int) string {
	if d.b.single {
		return fmt.Sprintf("%s[%d]", field, col)
	}
	return fmt.Sprintf("%s[%d][%d]", field, row, col)
}

// instances reads [{flight}, ...] or [[..], ...].
func (d *decoder) instances() error {
	if d.peek() != '[' {
		return d.typeError("instances", "want an array of objects or of arrays")
	}
	return d.batchArray("instances", func(n int) error {
		name := func() string { return "instances[" + strconv.Itoa(n) + "]" }
		switch c := d.peek(); {
		case c == '{' && (n == 0 || d.b.named):
			d.b.named = true
			return d.flight(n)
		case c == '[' && !d.b.named:
			return d.vector("instances", n)
		case c == '{' || c == '[':
			return badRequest("%s: instances must be all objects or all arrays, not a mix", name())
		default:
			return d.typeError(name(), "want an object of named fields or an array of numbers")
		}
	})
}

// Bits of flightFields, to find missing and repeated fields.
const (
	fMonth = 1 << iota
	fDayOfMonth
	fDayOfWeek
	fOrigin
	fDest
	fCarrier
	fCRSDepTime
	fAll = 1<<iota - 1
)

var flightFields = []struct {
	name string
	bit  int
}{
	{"month", fMonth}, {"day_of_month", fDayOfMonth}, {"day_of_week", fDayOfWeek},
	{"origin", fOrigin}, {"dest", fDest}, {"carrier", fCarrier}, {"crs_dep_time", fCRSDepTime},
}

// flight reads one named-field instance, strictly: every field present, none unknown.
func (d *decoder) flight(n int) error {
	d.b.flights = append(d.b.flights, model.Flight{})
	f := &d.b.flights[len(d.b.flights)-1]
	seen := 0
	err := d.object(func() string { return fmt.Sprintf("instances[%d]", n) }, func(key string) error {
		bit := 0
		for _, ff := range flightFields {
			if ff.name == key {
				bit = ff.bit
			}
		}
		where := func() string { return fmt.Sprintf("instances[%d].%s", n, key) }
		switch {
		case bit == 0:
			return badRequest("instances[%d]: unknown field %q (fields: month, day_of_month, day_of_week, origin, dest, carrier, crs_dep_time)", n, key)
		case seen&bit != 0:
			return badRequest("instances[%d]: field %q appears twice", n, key)
		}
		seen |= bit
		switch bit {
		case fOrigin, fDest, fCarrier:
			s, err := d.stringValue(where)
			switch bit {
			case fOrigin:
				f.Origin = s
			case fDest:
				f.Dest = s
			default:
				f.Carrier = s
			}
			return err
		}
		v, err := d.number(where)
		if err != nil {
			return err
		}
		if v != math.Trunc(v) || math.Abs(v) > 1e9 {
			return unprocessable("%s is %v, want an integer", where(), v)
		}
		switch bit {
		case fMonth:
			f.Month = int(v)
		case fDayOfMonth:
			f.DayOfMonth = int(v)
		case fDayOfWeek:
			f.DayOfWeek = int(v)
		default:
			f.CRSDepTime = int(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seen != fAll {
		for _, ff := range flightFields {
			if seen&ff.bit == 0 {
				return badRequest("instances[%d]: missing field %q", n, ff.name)
			}
		}
	}
	return nil
}

// stringValue reads a JSON string, interning the model's known categories.
func (d *decoder) stringValue(where func() string) (string, error) {
	if d.peek() != '"' {
		return "", d.typeError(where(), "want a string")
	}
	raw, escaped, err := d.str()
	if err != nil {
		return "", err
	}
	if escaped {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badRequest("%s: invalid string: %v", where(), err)
		}
		return s, nil
	}
	body := raw[1 : len(raw)-1]
	if s, ok := d.intern[string(body)]; ok {
		return s, nil
	}
	return string(body), nil
}

// key reads an object key and its colon.
func (d *decoder) key() (string, error) {
	if d.peek() != '"' {
		return "", d.syntax("want a quoted field name")
	}
	raw, escaped, err := d.str()
	if err != nil {
		return "", err
	}
	var k string
	switch {
	case escaped:
		var u string
		if err := json.Unmarshal(raw, &u); err != nil {
			return "", d.syntax("invalid field name")
		}
		k = u
	default:
		var ok bool
		if k, ok = knownKeys[string(raw)]; !ok {
			k = string(raw[1 : len(raw)-1])
		}
	}
	d.ws()
	if d.peek() != ':' {
		return "", d.syntax("want : after field name")
	}
	d.i++
	return k, nil
}

// knownKeys maps the quoted field names the decoder expects to their names, so that reading
// them allocates nothing.
var knownKeys = func() map[string]string {
	k := map[string]string{`"x"`: "x", `"instances"`: "instances"}
	for _, f := range flightFields {
		k[`"`+f.name+`"`] = f.name
	}
	return k
}()

// str scans a string literal and returns it with its quotes, and whether it holds escapes.
func (d *decoder) str() (raw []byte, escaped bool, err error) {
	start := d.i
	d.i++
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return d.s[start:d.i], escaped, nil
		case c == '\\':
			escaped = true
			d.i += 2
		case c < 0x20:
			return nil, false, d.syntax("control character in string")
		default:
			d.i++
		}
	}
	d.i = len(d.s)
	return nil, false, d.syntax("unterminated string")
}

// number reads a JSON number. Python's json module writes NaN and Infinity as bare words; they
// are recognised so that the answer says what is wrong with the value, not with the syntax.
func (d *decoder) number(name func() string) (float64, error) {
	s, start := d.s, d.i
	i := start
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		d.i = i
		return 0, d.syntax("unexpected end of input, want a number for " + name())
	}
	var mant uint64
	digits := 0
	switch c := s[i]; {
	case c == '0':
		i++
		digits = 1
	case c >= '1' && c <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			mant = mant*10 + uint64(s[i]-'0')
			digits++
			i++
		}
	default:
		return 0, d.notNumber(name)
	}
	simple := true
	if i < len(s) && s[i] == '.' {
		simple = false
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.i = i
			return 0, d.syntax("want a digit after the decimal point in " + name())
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		simple = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.i = i
			return 0, d.syntax("want a digit in the exponent of " + name())
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	d.i = i
	if simple && digits <= 15 {
		v := float64(mant)
		if s[start] == '-' {
			v = -v
		}
		return v, nil
	}
	v, err := strconv.ParseFloat(string(s[start:i]), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, unprocessable("%s is %s, out of the float64 range; values must be finite numbers", name(), s[start:i])
	}
	return v, nil
}

// notNumber explains a value that is not a number where one was wanted.
func (d *decoder) notNumber(name func() string) error {
	rest := d.s[d.i:]
	for _, w := range []string{"NaN", "Infinity", "-Infinity", "-NaN", "inf", "-inf", "nan"} {
		if len(rest) >= len(w) && string(rest[:len(w)]) == w {
			return unprocessable("%s is %s; values must be finite numbers", name(), w)
		}
	}
	return d.typeError(name(), "want a number")
}

// typeError names the JSON type found where another was wanted.
func (d *decoder) typeError(name, want string) error {
	found := "invalid JSON"
	switch d.peek() {
	case '"':
		found = "a string"
	case '{':
		found = "an object"
	case '[':
		found = "an array"
	case 't', 'f':
		found = "a boolean"
	case 'n':
		found = "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		found = "a number"
	case 0:
		return d.syntax("unexpected end of input: " + want + " for " + name)
	}
	if found == "invalid JSON" {
		return d.syntax(want + " for " + name)
	}
	return badRequest("%s is %s, %s (%s)", name, found, want, d.position())
}

func (d *decoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

func (d *decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// syntax reports malformed JSON at the current position.
func (d *decoder) syntax(msg string) error {
	return badRequest("malformed JSON at %s: %s", d.position(), msg)
}

func (d *decoder) position() string { return positionOf(d.s, d.i) }

// positionOf describes byte offset off of data as line, column and byte, all from 1.
func positionOf(data []byte, off int) string {
	off = min(max(off, 0), len(data))
	line, col := 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d column %d (byte %d)", line, col, off+1)
}

// jsonError turns an encoding/json error into a 400 that names the position.
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off := int(se.Offset) - 1
		hint := ""
		if rest := data[min(max(off, 0), len(data)):]; bytes.HasPrefix(rest, []byte("NaN")) || bytes.HasPrefix(rest, []byte("Infinity")) ||
			bytes.HasPrefix(rest, []byte("-Infinity")) {
			hint = " (NaN and Infinity are not numbers in JSON; values must be finite)"
		}
		return badRequest("malformed JSON at %s: %v%s", positionOf(data, off), se, hint)
	case errors.As(err, &te):
		return badRequest("wrong JSON type at %s: field %q is %s, want %s", positionOf(data, int(te.Offset)-1), te.Field, te.Value, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: unexpected end of input")
	}
	return badRequest("malformed JSON: %v", err)
}
