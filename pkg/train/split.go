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

// byClass returns the row indexes of each class, shuffled.
func byClass(delayed []bool, idx []int32, rng *rand.Rand) [2][]int32 {
	var c [2][]int32
	for _, i := range idx {
		k := 0
		if delayed[i] {
			k = 1
		}
		c[k] = append(c[k], i)
	}
	for k := range c {
		rng.Shuffle(len(c[k]), func(a, b int) { c[k][a], c[k][b] = c[k][b], c[k][a] })
	}
	return c
}

// stratifiedSplit holds out frac of each class (rounded, at least one row when the class has
// two or more) and returns the remaining and held-out indexes.
func stratifiedSplit(delayed []bool, idx []int32, frac float64, rng *rand.Rand) (keep, held []int32) {
	for _, rows := range byClass(delayed, idx, rng) {
		n := int(float64(len(rows))*frac + 0.5)
		if n == 0 && len(rows) > 1 {
			n = 1
		}
		held = append(held, rows[:n]...)
		keep = append(keep, rows[n:]...)
	}
	// Ascending rows read the Dataset's columns in order, which is faster than the shuffle.
	slices.Sort(keep)
	slices.Sort(held)
	return keep, held
}

// stratifiedFolds deals each class round-robin into k folds, so every fold has the same share
// of delayed flights (within one row).
func stratifiedFolds(delayed []bool, idx []int32, k int, rng *rand.Rand) [][]int32 {
	folds := make([][]int32, k)
	f := 0
	for _, rows := range byClass(delayed, idx, rng) {
		for _, i := range rows {
			folds[f] = append(folds[f], i)
			f = (f + 1) % k
		}
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
