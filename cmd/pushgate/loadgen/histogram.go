package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: values below 2^(subBits+1) ns have their own bucket; above,
// every power of two is split into 2^subBits equal buckets, so a bucket is at
// most 1/128 (0.78%) of its lower bound wide. Values are clamped to maxTrackable.
const (
	subBits      = 7
	maxBits      = 40 // 2^40 ns ≈ 18 minutes
	numBuckets   = (maxBits-subBits-1)<<subBits + 1<<(subBits+1)
	maxTrackable = 1<<maxBits - 1
)

// Histogram records latencies in nanoseconds with a relative error below 1%.
// It is not safe for concurrent use: each worker records into its own and the
// results are merged once the workers are done.
type Histogram struct {
	counts   [numBuckets]uint64
	n        uint64
	sum      float64
	min, max int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{min: math.MaxInt64} }

// bucketOf maps a value to its bucket: the shift that keeps its top subBits+1 bits, plus those bits.
func bucketOf(v int64) int {
	u := uint64(v)
	shift := max(bits.Len64(u)-(subBits+1), 0)
	return shift<<subBits + int(u>>uint(shift))
}

// bucketBounds returns the lowest and highest value that land in bucket i.
func bucketBounds(i int) (lo, hi int64) {
	if i < 1<<(subBits+1) {
		return int64(i), int64(i)
	}
	shift := i>>subBits - 1
	top := int64(i - shift<<subBits)
	return top << shift, (top+1)<<shift - 1
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	} else if v > maxTrackable {
		v = maxTrackable
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds the observations of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range &o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest observation exactly.
func (h *Histogram) Max() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.max)
}

// Min returns the smallest observation exactly.
func (h *Histogram) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Mean returns the average observation.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value below which a share q of the observations fall:
// the highest value of the bucket holding that rank (as HDR histograms do),
// never above the largest observation.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range &h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketBounds(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
