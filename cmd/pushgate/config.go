package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/redisquota"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/web/mail"
)

// config is everything `serve` and the other commands read at start.
type config struct {
	Listen           string `yaml:"listen"`
	Region           string `yaml:"region"`
	PublicURL        string `yaml:"public_url"`
	RegionURLs       string `yaml:"region_urls"`
	DatabaseURL      string `yaml:"database_url"`
	RedisURL         string `yaml:"redis_url"`
	AppsFile         string `yaml:"apps_file"`
	StripeSecretKey  string `yaml:"stripe_secret_key"`
	StripeWebhook    string `yaml:"stripe_webhook_secret"`
	StripeAPIURL     string `yaml:"stripe_api_url"`
	StripePrices     string `yaml:"stripe_prices"`
	StripeMetered    string `yaml:"stripe_metered_prices"`
	StripeMeterEvent string `yaml:"stripe_meter_event"`
	StripePackages   string `yaml:"stripe_packages"`
	SMTPURL          string `yaml:"smtp_url"`
	BillingGrace     string `yaml:"billing_grace"`
	BillingReturn    string `yaml:"billing_return_url"`
	LogFormat        string `yaml:"log_format"`
	LogLevel         string `yaml:"log_level"`
	ShutdownTimeout  string `yaml:"shutdown_timeout"`
	DataDir          string `yaml:"data_dir"`
	SandboxListen    string `yaml:"sandbox_listen"`
	Registration     string `yaml:"registration"`
	RegistrationsPH  string `yaml:"registrations_per_hour"`
	TrustProxy       string `yaml:"trust_proxy"`
	TermsVersion     string `yaml:"terms_version"`
	TermsURL         string `yaml:"terms_url"`
	TermsPublished   string `yaml:"terms_published_at"`
	TermsGrace       string `yaml:"terms_grace"`
	AuthCacheTTL     string `yaml:"auth_cache_ttl"`
	CloudTokenTTL    string `yaml:"cloud_token_ttl"`
	AuthTimeout      string `yaml:"auth_timeout"`
	AuthStaleMax     string `yaml:"auth_stale_max"`
	AuthFailuresPM   string `yaml:"auth_failures_per_minute"`
	TokenKey         string `yaml:"token_key"`
	TokenKeysPrev    string `yaml:"token_keys_previous"`
	LegacyTokens     string `yaml:"legacy_tokens"`
	QuotaPolicy      string `yaml:"quota_redis_policy"`
	UpgradeURL       string `yaml:"upgrade_url"`
	RateLimits       string `yaml:"rate_limits"`
	PprofListen      string `yaml:"pprof_listen"`
	DeliveryLog      string `yaml:"delivery_log"`

	// Derived by validate.
	publicURLDerived bool // public_url was not set: it follows the listen address
	termsURLDerived  bool
	regions          map[string]string
	shutdownTimeout  time.Duration
	registrationOpen bool
	deliveryLogOn    bool
	registrationsPH  int
	trustProxy       bool
	termsPublished   time.Time
	termsGrace       time.Duration
	authCacheTTL     time.Duration
	cloudTokenTTL    time.Duration
	authTimeout      time.Duration
	authStaleMax     time.Duration
	authFailuresPM   int
	tokenKeys        *tenants.TokenKeys // nil when token_key is unset
	refuseLegacy     bool
	quotaPolicy      redisquota.Policy
	upgradeURL       string
	rateLimits       map[tenants.Plan]api.RateLimit
	billing          billingSettings
}

// setting binds one configuration value to its YAML key, environment variable and flag.
type setting struct {
	key, env, flag, usage string
	value                 func(*config) *string
}

func settings() []setting {
	return []setting{
		{"listen", "PUSHGATE_LISTEN", "listen", "HTTP listen address", func(c *config) *string { return &c.Listen }},
		{"region", "PUSHGATE_REGION", "region", "this gateway's region: us or de", func(c *config) *string { return &c.Region }},
		{"public_url", "PUSHGATE_PUBLIC_URL", "public-url", "the URL workspaces use to reach this region (default http://localhost:PORT of listen)", func(c *config) *string { return &c.PublicURL }},
		{"region_urls", "PUSHGATE_REGION_URLS", "region-urls", "every region's public URL: us=https://…,de=https://…", func(c *config) *string { return &c.RegionURLs }},
		{"database_url", "PUSHGATE_DATABASE_URL", "database-url", "sqlite:PATH or postgres://… (default sqlite:DATA_DIR/pushgate.db)", func(c *config) *string { return &c.DatabaseURL }},
		{"redis_url", "PUSHGATE_REDIS_URL", "redis-url", "redis://…; required when more than one replica runs", func(c *config) *string { return &c.RedisURL }},
		{"apps_file", "PUSHGATE_APPS_FILE", "apps-file", "YAML list of push apps", func(c *config) *string { return &c.AppsFile }},
		{"stripe_secret_key", "PUSHGATE_STRIPE_SECRET_KEY", "", "Stripe secret key", func(c *config) *string { return &c.StripeSecretKey }},
		{"stripe_webhook_secret", "PUSHGATE_STRIPE_WEBHOOK_SECRET", "", "Stripe webhook signing secret", func(c *config) *string { return &c.StripeWebhook }},
		{"stripe_api_url", "PUSHGATE_STRIPE_API_URL", "", "Stripe API URL override (stripe-mock)", func(c *config) *string { return &c.StripeAPIURL }},
		{"stripe_prices", "PUSHGATE_STRIPE_PRICES", "", "the Stripe price of each paid plan, pro=price_…[,enterprise=price_…]", func(c *config) *string { return &c.StripePrices }},
		{"stripe_metered_prices", "PUSHGATE_STRIPE_METERED_PRICES", "", "optional metered overage price per plan, pro=price_…", func(c *config) *string { return &c.StripeMetered }},
		{"stripe_meter_event", "PUSHGATE_STRIPE_METER_EVENT", "", "the event name of the Stripe billing meter that the metered prices bill (default pushgate_pushes)", func(c *config) *string { return &c.StripeMeterEvent }},
		{"smtp_url", "PUSHGATE_SMTP_URL", "", "SMTP server for the dashboard's mails, smtp://user:pass@host:587?from=… (unset: written to the log)", func(c *config) *string { return &c.SMTPURL }},
		{"stripe_packages", "PUSHGATE_STRIPE_PACKAGES", "", "push packages on sale and their one-time prices, 100000=price_…,…", func(c *config) *string { return &c.StripePackages }},
		{"billing_grace", "PUSHGATE_BILLING_GRACE", "", "how long a workspace keeps its plan after a failed payment", func(c *config) *string { return &c.BillingGrace }},
		{"billing_return_url", "PUSHGATE_BILLING_RETURN_URL", "", "where Checkout and the customer portal send customers back (default PUBLIC_URL)", func(c *config) *string { return &c.BillingReturn }},
		{"log_format", "PUSHGATE_LOG_FORMAT", "log-format", "text or json", func(c *config) *string { return &c.LogFormat }},
		{"log_level", "PUSHGATE_LOG_LEVEL", "log-level", "debug, info, warn or error", func(c *config) *string { return &c.LogLevel }},
		{"shutdown_timeout", "PUSHGATE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "how long in-flight requests may finish on SIGTERM", func(c *config) *string { return &c.ShutdownTimeout }},
		{"data_dir", "PUSHGATE_DATA_DIR", "data-dir", "where the default SQLite database lives, and --dev's throwaway credentials", func(c *config) *string { return &c.DataDir }},
		{"registration", "PUSHGATE_REGISTRATION", "registration", "self-service registration: open or closed", func(c *config) *string { return &c.Registration }},
		{"registrations_per_hour", "PUSHGATE_REGISTRATIONS_PER_HOUR", "", "self-service registrations allowed per client address per hour", func(c *config) *string { return &c.RegistrationsPH }},
		{"trust_proxy", "PUSHGATE_TRUST_PROXY", "", "true behind an ingress: take the client address from the last X-Forwarded-For hop", func(c *config) *string { return &c.TrustProxy }},
		{"terms_version", "PUSHGATE_TERMS_VERSION", "", "the current terms of service version", func(c *config) *string { return &c.TermsVersion }},
		{"terms_url", "PUSHGATE_TERMS_URL", "", "where the current terms can be read (default PUBLIC_URL/terms)", func(c *config) *string { return &c.TermsURL }},
		{"terms_published_at", "PUSHGATE_TERMS_PUBLISHED_AT", "", "when the current terms version took effect, RFC 3339", func(c *config) *string { return &c.TermsPublished }},
		{"terms_grace", "PUSHGATE_TERMS_GRACE", "", "how long workspaces that accepted an earlier version keep sending", func(c *config) *string { return &c.TermsGrace }},
		{"cloud_token_ttl", "PUSHGATE_CLOUD_TOKEN_TTL", "", "how long a Rocket.Chat Cloud access token lives (Rocket.Chat asks for a new one when it ends)", func(c *config) *string { return &c.CloudTokenTTL }},
		{"auth_cache_ttl", "PUSHGATE_AUTH_CACHE_TTL", "", "how long an authenticated token is cached (bounds how fast a rotation or suspension reaches other replicas)", func(c *config) *string { return &c.AuthCacheTTL }},
		{"auth_timeout", "PUSHGATE_AUTH_TIMEOUT", "", "how long an authentication query may take before the database counts as unreachable", func(c *config) *string { return &c.AuthTimeout }},
		{"auth_stale_max", "PUSHGATE_AUTH_STALE_MAX", "", "while the database is unreachable, how long after its last check a workspace is still served from the cache", func(c *config) *string { return &c.AuthStaleMax }},
		{"auth_failures_per_minute", "PUSHGATE_AUTH_FAILURES_PER_MINUTE", "", "failed authentications allowed per client address (IPv4, or IPv6 /64) per minute before 429", func(c *config) *string { return &c.AuthFailuresPM }},
		{"token_key", "PUSHGATE_TOKEN_KEY", "", "the key that signs workspace tokens, ID:SECRET (two-character id, secret of 32 bytes or more); required by serve without --dev", func(c *config) *string { return &c.TokenKey }},
		{"token_keys_previous", "PUSHGATE_TOKEN_KEYS_PREVIOUS", "", "earlier token keys whose tokens are still accepted, ID:SECRET,…", func(c *config) *string { return &c.TokenKeysPrev }},
		{"legacy_tokens", "PUSHGATE_LEGACY_TOKENS", "", "tokens of the old unsigned format: accept or refuse", func(c *config) *string { return &c.LegacyTokens }},
		{"quota_redis_policy", "PUSHGATE_QUOTA_REDIS_POLICY", "", "when Redis is unreachable: fail_open (count locally, reconcile later) or fail_closed (refuse, retry later)", func(c *config) *string { return &c.QuotaPolicy }},
		{"upgrade_url", "PUSHGATE_UPGRADE_URL", "", "where over-quota errors send workspace admins (default PUBLIC_URL/upgrade)", func(c *config) *string { return &c.UpgradeURL }},
		{"rate_limits", "PUSHGATE_RATE_LIMITS", "", "per-workspace burst limits by plan, PLAN=PER_SECOND/BURST,… (default free=500/20000,pro=2000/50000,enterprise=5000/100000)", func(c *config) *string { return &c.RateLimits }},
		{"pprof_listen", "PUSHGATE_PPROF_LISTEN", "pprof-listen", "serve Go's profiler on this address (keep it on loopback); off when empty", func(c *config) *string { return &c.PprofListen }},
		{"delivery_log", "PUSHGATE_DELIVERY_LOG", "", "the dashboard's delivery log of the last 7 days: on or off", func(c *config) *string { return &c.DeliveryLog }},
		{"sandbox_listen", "PUSHGATE_SANDBOX_LISTEN", "sandbox-listen", "--dev: address of the in-process sandbox providers", func(c *config) *string { return &c.SandboxListen }},
	}
}

func defaultConfig() config {
	return config{
		Listen:          ":8086",
		Region:          "us",
		LogFormat:       "text",
		LogLevel:        "info",
		ShutdownTimeout: "20s",
		DataDir:         "./data",
		SandboxListen:   "127.0.0.1:0",
		Registration:    "open",
		DeliveryLog:     "on",
		RegistrationsPH: "10",
		TrustProxy:      "false",
		TermsVersion:    "2026-11-01",
		TermsPublished:  "2026-11-01T00:00:00Z",
		TermsGrace:      "720h",
		AuthCacheTTL:    "5s",
		CloudTokenTTL:   "1h",
		AuthTimeout:     "2s",
		AuthStaleMax:    "15m",
		AuthFailuresPM:  "60",
		LegacyTokens:    "accept",
		QuotaPolicy:     "fail_open",
		BillingGrace:    "168h",
	}
}

// configFlags registers the common flags on fs and returns a function that
// loads the configuration once fs has been parsed.
func configFlags(fs *flag.FlagSet, getenv func(string) string) func() (config, error) {
	file := fs.String("config", "", "YAML configuration `file`")
	flagValues := map[string]*string{}
	for _, s := range settings() {
		if s.flag != "" {
			flagValues[s.key] = fs.String(s.flag, "", s.usage+" (env "+s.env+")")
		}
	}
	return func() (config, error) {
		cfg := defaultConfig()
		if *file != "" {
			if err := loadConfigFile(*file, &cfg); err != nil {
				return cfg, err
			}
		}
		for _, s := range settings() {
			if v := getenv(s.env); v != "" {
				*s.value(&cfg) = v
			}
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, s := range settings() {
			if s.flag != "" && set[s.flag] {
				*s.value(&cfg) = *flagValues[s.key]
			}
		}
		return cfg, cfg.validate()
	}
}

func loadConfigFile(path string, cfg *config) error {
	body, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %s", path, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// validate checks every setting and fills the derived fields; each error names
// the setting and the expected form.
func (c *config) validate() error {
	bad := func(key, format string, args ...any) error {
		env := ""
		for _, s := range settings() {
			if s.key == key {
				env = s.env
			}
		}
		return fmt.Errorf("config: %s (%s): %s", env, key, fmt.Sprintf(format, args...))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen", "expected HOST:PORT or :PORT, got %q", c.Listen)
	}
	if c.Region != "us" && c.Region != "de" {
		return bad("region", "must be us or de, got %q", c.Region)
	}
	if c.PublicURL == "" {
		c.publicURLDerived = true
		c.PublicURL = localURL(c.Listen)
	}
	if err := checkHTTPURL(c.PublicURL); err != nil {
		return bad("public_url", "%v", err)
	}
	c.regions = map[string]string{c.Region: strings.TrimRight(c.PublicURL, "/")}
	if c.RegionURLs != "" {
		for _, pair := range strings.Split(c.RegionURLs, ",") {
			region, u, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok {
				return bad("region_urls", "expected us=https://…,de=https://…, got %q", pair)
			}
			if region != "us" && region != "de" {
				return bad("region_urls", "unknown region %q: regions are us and de", region)
			}
			if err := checkHTTPURL(u); err != nil {
				return bad("region_urls", "%s: %v", region, err)
			}
			c.regions[region] = strings.TrimRight(u, "/")
		}
	}
	if c.DataDir == "" {
		return bad("data_dir", "expected a directory such as ./data")
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:" + strings.TrimRight(c.DataDir, "/") + "/pushgate.db"
	}
	if _, err := sqlstore.ParseURL(c.DatabaseURL); err != nil {
		return bad("database_url", "%v", err)
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			return bad("redis_url", "expected redis://[:PASSWORD@]HOST:PORT[/DB]: %v", err)
		}
	}
	if c.AppsFile != "" {
		f, err := os.Open(c.AppsFile)
		if err != nil {
			return bad("apps_file", "cannot read it: %v", err)
		}
		f.Close()
	}
	if c.StripeAPIURL != "" {
		if err := checkHTTPURL(c.StripeAPIURL); err != nil {
			return bad("stripe_api_url", "%v", err)
		}
	}
	if c.SMTPURL != "" {
		if _, err := mail.ParseURL(c.SMTPURL); err != nil {
			return bad("smtp_url", "%v", err)
		}
	}
	if err := c.validateBilling(bad); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("log_format", "must be text or json, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	d, err := time.ParseDuration(c.ShutdownTimeout)
	if err != nil || d <= 0 {
		return bad("shutdown_timeout", "expected a positive duration such as 20s, got %q", c.ShutdownTimeout)
	}
	c.shutdownTimeout = d
	switch c.DeliveryLog {
	case "on", "off":
		c.deliveryLogOn = c.DeliveryLog == "on"
	default:
		return bad("delivery_log", "must be on or off, got %q", c.DeliveryLog)
	}
	switch c.Registration {
	case "open", "closed":
		c.registrationOpen = c.Registration == "open"
	default:
		return bad("registration", "must be open or closed, got %q", c.Registration)
	}
	if n, err := strconv.Atoi(c.RegistrationsPH); err != nil || n < 1 {
		return bad("registrations_per_hour", "expected a whole number of 1 or more, got %q", c.RegistrationsPH)
	} else {
		c.registrationsPH = n
	}
	if c.trustProxy, err = strconv.ParseBool(c.TrustProxy); err != nil {
		return bad("trust_proxy", "expected true or false, got %q", c.TrustProxy)
	}
	if c.TermsVersion == "" || len(c.TermsVersion) > 64 {
		return bad("terms_version", "expected a version id such as 2026-11-01, got %q", c.TermsVersion)
	}
	if c.TermsURL == "" {
		c.termsURLDerived = true
		c.TermsURL = strings.TrimRight(c.PublicURL, "/") + "/terms"
	}
	if err := checkHTTPURL(c.TermsURL); err != nil {
		return bad("terms_url", "%v", err)
	}
	if c.termsPublished, err = time.Parse(time.RFC3339, c.TermsPublished); err != nil {
		return bad("terms_published_at", "expected an RFC 3339 time such as 2026-11-01T00:00:00Z, got %q", c.TermsPublished)
	}
	c.termsPublished = c.termsPublished.UTC()
	if c.termsGrace, err = time.ParseDuration(c.TermsGrace); err != nil || c.termsGrace < 0 {
		return bad("terms_grace", "expected a duration such as 720h (30 days), got %q", c.TermsGrace)
	}
	if c.cloudTokenTTL, err = time.ParseDuration(c.CloudTokenTTL); err != nil || c.cloudTokenTTL < time.Second || c.cloudTokenTTL > 24*time.Hour {
		return bad("cloud_token_ttl", "expected a duration between 1s and 24h such as 1h, got %q", c.CloudTokenTTL)
	}
	if c.authCacheTTL, err = time.ParseDuration(c.AuthCacheTTL); err != nil || c.authCacheTTL <= 0 || c.authCacheTTL > time.Minute {
		return bad("auth_cache_ttl", "expected a duration between 1ms and 1m, got %q", c.AuthCacheTTL)
	}
	if err := c.validateAuth(bad); err != nil {
		return err
	}
	switch c.QuotaPolicy {
	case "fail_open":
		c.quotaPolicy = redisquota.FailOpen
	case "fail_closed":
		c.quotaPolicy = redisquota.FailClosed
	default:
		return bad("quota_redis_policy", "must be fail_open or fail_closed, got %q", c.QuotaPolicy)
	}
	c.upgradeURL = c.UpgradeURL
	if c.upgradeURL == "" {
		c.upgradeURL = strings.TrimRight(c.PublicURL, "/") + "/upgrade"
	}
	if err := checkHTTPURL(c.upgradeURL); err != nil {
		return bad("upgrade_url", "%v", err)
	}
	if c.rateLimits, err = parseRateLimits(c.RateLimits); err != nil {
		return bad("rate_limits", "%v", err)
	}
	if c.PprofListen != "" {
		if _, _, err := net.SplitHostPort(c.PprofListen); err != nil {
			return bad("pprof_listen", "expected HOST:PORT such as 127.0.0.1:6060, got %q", c.PprofListen)
		}
	}
	if _, _, err := net.SplitHostPort(c.SandboxListen); err != nil {
		return bad("sandbox_listen", "expected HOST:PORT, got %q", c.SandboxListen)
	}
	return nil
}

// localURL is the URL of a listen address as seen from this machine:
// localhost for an unspecified host, the host itself otherwise.
func localURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// listeningOn points a derived public_url, and the URLs made from it, at
// the address actually listened on (which differs when the port was 0).
func (c *config) listeningOn(addr net.Addr) {
	if !c.publicURLDerived {
		return
	}
	c.PublicURL = localURL(addr.String())
	c.regions[c.Region] = c.PublicURL
	if c.termsURLDerived {
		c.TermsURL = c.PublicURL + "/terms"
	}
	if c.UpgradeURL == "" {
		c.upgradeURL = c.PublicURL + "/upgrade"
	}
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("expected an absolute http(s) URL, got %q", raw)
	}
	return nil
}

// parseRateLimits reads "free=500/20000,pro=2000/50000" over the defaults.
func parseRateLimits(raw string) (map[tenants.Plan]api.RateLimit, error) {
	out := api.DefaultRateLimits()
	if raw == "" {
		return out, nil
	}
	for _, item := range strings.Split(raw, ",") {
		plan, spec, ok := strings.Cut(strings.TrimSpace(item), "=")
		perSec, burst, ok2 := strings.Cut(spec, "/")
		rate, err1 := strconv.ParseFloat(perSec, 64)
		b, err2 := strconv.Atoi(burst)
		if !ok || !ok2 || err1 != nil || err2 != nil || rate <= 0 || b < 1 || !tenants.Plan(plan).Valid() {
			return nil, fmt.Errorf("expected PLAN=PER_SECOND/BURST such as free=500/20000, got %q", item)
		}
		out[tenants.Plan(plan)] = api.RateLimit{PerSecond: rate, Burst: b}
	}
	return out, nil
}

// validateAuth checks the authentication settings: timeouts, the stale
// bound, the failure limit and the token keys.
func (c *config) validateAuth(bad func(key, format string, args ...any) error) error {
	var err error
	if c.authTimeout, err = time.ParseDuration(c.AuthTimeout); err != nil || c.authTimeout <= 0 || c.authTimeout > 30*time.Second {
		return bad("auth_timeout", "expected a duration between 1ms and 30s such as 2s, got %q", c.AuthTimeout)
	}
	if c.authStaleMax, err = time.ParseDuration(c.AuthStaleMax); err != nil || c.authStaleMax < c.authCacheTTL || c.authStaleMax > 24*time.Hour {
		return bad("auth_stale_max", "expected a duration between auth_cache_ttl (%s) and 24h such as 15m, got %q", c.authCacheTTL, c.AuthStaleMax)
	}
	if c.authFailuresPM, err = strconv.Atoi(c.AuthFailuresPM); err != nil || c.authFailuresPM < 1 {
		return bad("auth_failures_per_minute", "expected a whole number of 1 or more, got %q", c.AuthFailuresPM)
	}
	switch c.LegacyTokens {
	case "accept", "refuse":
		c.refuseLegacy = c.LegacyTokens == "refuse"
	default:
		return bad("legacy_tokens", "must be accept or refuse, got %q", c.LegacyTokens)
	}
	c.tokenKeys = nil
	if c.TokenKey == "" {
		if c.TokenKeysPrev != "" {
			return bad("token_key", "is required when token_keys_previous is set: the current key signs new tokens")
		}
		return nil
	}
	current, err := tenants.ParseTokenKey(c.TokenKey)
	if err != nil {
		return bad("token_key", "%v", err)
	}
	keys := &tenants.TokenKeys{Current: current}
	seen := map[string]bool{current.ID: true}
	if c.TokenKeysPrev != "" {
		for _, raw := range strings.Split(c.TokenKeysPrev, ",") {
			k, err := tenants.ParseTokenKey(raw)
			if err != nil {
				return bad("token_keys_previous", "%v", err)
			}
			if seen[k.ID] {
				return bad("token_keys_previous", "key id %s is used twice: each key needs its own id", k.ID)
			}
			seen[k.ID] = true
			keys.Previous = append(keys.Previous, k)
		}
	}
	c.tokenKeys = keys
	return nil
}
