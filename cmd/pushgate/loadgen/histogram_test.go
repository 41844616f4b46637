package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	t.Run("every bucket is within 1% of its values", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 100_000 {
			v := int64(math.Exp(rng.Float64() * math.Log(maxTrackable)))
			lo, hi := bucketBounds(bucketOf(v))
			if v < lo || v > hi {
				t.Fatalf("value %d lands in bucket [%d, %d]", v, lo, hi)
			}
			if width := float64(hi - lo); width/float64(max(lo, 1)) > 0.01 {
				t.Fatalf("bucket [%d, %d] of %d is %.2f%% wide", lo, hi, v, 100*width/float64(lo))
			}
		}
		if got := bucketOf(maxTrackable); got != numBuckets-1 {
			t.Fatalf("the largest value is in bucket %d, want the last one, %d", got, numBuckets-1)
		}
	})

	t.Run("buckets tile the range without gaps", func(t *testing.T) {
		prevHi := int64(-1)
		for i := range numBuckets {
			lo, hi := bucketBounds(i)
			if lo != prevHi+1 || hi < lo {
				t.Fatalf("bucket %d is [%d, %d] after one ending at %d", i, lo, hi, prevHi)
			}
			prevHi = hi
		}
		if prevHi != maxTrackable {
			t.Fatalf("the last bucket ends at %d, want %d", prevHi, int64(maxTrackable))
		}
	})

	t.Run("quantiles are within 1% of the exact ones", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		h := NewHistogram()
		vals := make([]int64, 200_000)
		for i := range vals {
			// Log-normal around 1 ms, as latencies are.
			vals[i] = int64(float64(time.Millisecond) * math.Exp(rng.NormFloat64()*1.5))
			h.Record(time.Duration(vals[i]))
		}
		slices.Sort(vals)
		for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
			exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
			got := int64(h.Quantile(q))
			if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 0.01 {
				t.Errorf("q%g = %v, exact %v: %.3f%% off", q, time.Duration(got), time.Duration(exact), rel*100)
			}
		}
		if h.Max() != time.Duration(vals[len(vals)-1]) || h.Min() != time.Duration(vals[0]) {
			t.Errorf("min/max = %v/%v, want exactly %v/%v", h.Min(), h.Max(), time.Duration(vals[0]), time.Duration(vals[len(vals)-1]))
		}
		if h.Count() != uint64(len(vals)) {
			t.Errorf("count = %d, want %d", h.Count(), len(vals))
		}
	})

	t.Run("merged histograms equal one that saw everything", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		all, parts := NewHistogram(), []*Histogram{NewHistogram(), NewHistogram(), NewHistogram()}
		for i := range 30_000 {
			d := time.Duration(rng.Int64N(int64(time.Second)))
			all.Record(d)
			parts[i%3].Record(d)
		}
		merged := NewHistogram()
		merged.Merge(NewHistogram()) // an empty one changes nothing
		for _, p := range parts {
			merged.Merge(p)
		}
		if merged.counts != all.counts || merged.n != all.n || merged.min != all.min || merged.max != all.max {
			t.Fatal("merged histogram differs from the one that recorded every value")
		}
		if math.Abs(float64(merged.Mean()-all.Mean())) > 1 {
			t.Fatalf("merged mean %v, want %v", merged.Mean(), all.Mean())
		}
	})

	t.Run("empty, negative and huge values are safe", func(t *testing.T) {
		h := NewHistogram()
		if h.Quantile(0.99) != 0 || h.Max() != 0 || h.Mean() != 0 || h.Min() != 0 {
			t.Fatal("an empty histogram must report zeros")
		}
		h.Record(-5)
		h.Record(time.Duration(math.MaxInt64))
		if h.Min() != 0 || h.Max() != maxTrackable {
			t.Fatalf("min/max = %d/%d, want 0/%d (clamped)", h.Min(), h.Max(), int64(maxTrackable))
		}
	})

	t.Run("a quantile never exceeds the largest value", func(t *testing.T) {
		h := NewHistogram()
		h.Record(1_000_001)
		if got := h.Quantile(0.5); got != 1_000_001 {
			t.Fatalf("p50 of one value = %d, want that value", got)
		}
	})
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	for i := range b.N {
		h.Record(time.Duration(i&0xfffff) * time.Microsecond)
	}
}
