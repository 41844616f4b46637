package loadgen

// idAlphabet is the alphabet of Mattermost's 26-character ids.
const idAlphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

const hexDigits = "0123456789abcdef"

// DeadTokenPrefix makes the sandbox answer that a device token is gone.
const DeadTokenPrefix = "unregistered"

// Mix decides the shape of every request from its sequence number alone, so
// that any worker can build any request without coordination.
type Mix struct {
	Workspaces int
	// IOSShare is the share of requests for the iOS app (the rest are Android).
	IOSShare float64
	// DeadShare is the share of requests whose device token the sandbox reports dead.
	DeadShare float64
	// DevicesPerWorkspace is how many distinct live device tokens a workspace has (default 1000).
	DevicesPerWorkspace int
	// Seed is the run's nonce: ids differ between runs so that duplicate suppression never applies.
	Seed uint64

	iosBelow, deadBelow uint64
}

// Shape is what one request looks like.
type Shape struct {
	Seq       uint64
	Workspace int
	IOS       bool
	Dead      bool
	Device    uint64 // device number within the workspace
}

func (m *Mix) init() {
	m.Workspaces = max(m.Workspaces, 1)
	if m.DevicesPerWorkspace <= 0 {
		m.DevicesPerWorkspace = 1000
	}
	m.iosBelow = shareThreshold(m.IOSShare)
	m.deadBelow = shareThreshold(m.DeadShare)
}

func shareThreshold(share float64) uint64 {
	switch {
	case share <= 0:
		return 0
	case share >= 1:
		return 1 << 32
	}
	return uint64(share * (1 << 32))
}

// Shape returns the shape of request seq; workspaces take turns.
func (m *Mix) Shape(seq uint64) Shape {
	h := splitmix64(seq ^ m.Seed)
	w := uint64(m.Workspaces)
	return Shape{
		Seq:       seq,
		Workspace: int(seq % w),
		IOS:       h&0xffffffff < m.iosBelow,
		Dead:      h>>32 < m.deadBelow,
		Device:    (seq / w) % uint64(m.DevicesPerWorkspace),
	}
}

// AppendDeviceToken appends the 64-character device token of s: hex like an
// APNs token, starting with DeadTokenPrefix when s is dead.
func (m *Mix) AppendDeviceToken(b []byte, s Shape) []byte {
	n := 64
	if s.Dead {
		b = append(b, DeadTokenPrefix...)
		n -= len(DeadTokenPrefix)
	}
	x := uint64(s.Workspace)<<40 ^ s.Device
	for n > 0 {
		x = splitmix64(x)
		for i := 0; i < 16 && n > 0; i++ {
			b = append(b, hexDigits[x>>60])
			x <<= 4
			n--
		}
	}
	return b
}

// AppendID appends a 26-character Mattermost-style id, unique in this run for (kind, n).
func (m *Mix) AppendID(b []byte, kind byte, n uint64) []byte {
	s := m.Seed
	for range 8 {
		b = append(b, idAlphabet[s&31])
		s >>= 5
	}
	b = append(b, kind)
	for i := 16; i >= 0; i-- {
		b = append(b, idAlphabet[(n>>(5*uint(i)))&31])
	}
	return b
}

// splitmix64 is a fast, well-mixing 64-bit hash.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
