package train

import (
	"math/rand/v2"
	"slices"
)

// newRand returns the pipeline's random source. PCG's output is fixed by its specification,
// so a seed gives the same splits on every Go release.
func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x64656c6179))
}

// byClass returns the row indexes of idx (nil: every row) grouped by class, on-time rows
// first, each class shuffled, in one slice, and the number of on-time rows. One slice of
// 4 bytes per row is all the memory a split needs.
func byClass(delayed []bool, idx []int32, rng *rand.Rand) (rows []int32, n0 int) {
	n := len(idx)
	if idx == nil {
		n = len(delayed)
	}
	at := func(j int) int32 {
		if idx == nil {
			return int32(j)
		}
		return idx[j]
	}
	for j := 0; j < n; j++ {
		if !delayed[at(j)] {
			n0++
		}
	}
	rows = make([]int32, n)
	a, b := 0, n0
	for j := 0; j < n; j++ {
		if i := at(j); delayed[i] {
			rows[b], b = i, b+1
		} else {
			rows[a], a = i, a+1
		}
	}
	for _, c := range [][]int32{rows[:n0], rows[n0:]} {
		rng.Shuffle(len(c), func(x, y int) { c[x], c[y] = c[y], c[x] })
	}
	return rows, n0
}

// heldCount is how many rows of a class of n a split holds out: frac rounded, at least one
// when the class has two or more.
func heldCount(n int, frac float64) int {
	h := int(float64(n)*frac + 0.5)
	if h == 0 && n > 1 {
		h = 1
	}
	return h
}

// stratifiedSplit holds out frac of each class (see heldCount) of the rows idx (nil: every
// row) and returns the remaining and held-out indexes, ascending. Both share one slice.
func stratifiedSplit(delayed []bool, idx []int32, frac float64, rng *rand.Rand) (keep, held []int32) {
	rows, n0 := byClass(delayed, idx, rng)
	h0, h1 := heldCount(n0, frac), heldCount(len(rows)-n0, frac)
	// rows is [held0 keep0 | held1 keep1]; rotating the middle gives [held0 held1 | keep0 keep1].
	rotate(rows[h0:n0+h1], n0-h0)
	h := h0 + h1
	held, keep = rows[:h:h], rows[h:]
	// Ascending rows read the Dataset's columns in order, which is faster than the shuffle.
	slices.Sort(keep)
	slices.Sort(held)
	return keep, held
}

// rotate moves s[:k] to the end of s in place.
func rotate(s []int32, k int) {
	slices.Reverse(s[:k])
	slices.Reverse(s[k:])
	slices.Reverse(s)
}

// stratifiedFolds deals each class round-robin into k folds, so every fold has the same share
// of delayed flights (within one row). The folds are ascending and share one slice.
func stratifiedFolds(delayed []bool, idx []int32, k int, rng *rand.Rand) [][]int32 {
	rows, _ := byClass(delayed, idx, rng)
	n := len(rows)
	out := make([]int32, n)
	folds := make([][]int32, k)
	start := 0
	for f := range folds {
		size := n / k
		if f < n%k {
			size++
		}
		folds[f] = out[start : start : start+size]
		start += size
	}
	// Dealing continues across the classes: the j-th row of the class-grouped order goes
	// to fold j mod k.
	for j, i := range rows {
		folds[j%k] = append(folds[j%k], i)
	}
	for _, f := range folds {
		slices.Sort(f)
	}
	return folds
}

func seq(n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(i)
	}
	return s
}
