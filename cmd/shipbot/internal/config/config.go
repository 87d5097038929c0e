// Package config reads shipbot.yaml into one typed, validated Config. Every
// problem is reported with where it is (key path and line) and how to fix it.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shipbot/shipbot/chat/alert"
	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/policy"
)

// File is the shape of shipbot.yaml.
type File struct {
	Repo struct {
		URL      string `yaml:"url"`
		Branch   string `yaml:"branch"`
		CacheDir string `yaml:"cacheDir"`
		// PushTimeout bounds one push (default 30s); a push whose outcome
		// is unknown is looked into in the background for ResolveTimeout
		// (default 15m), the first look after ResolveBackoff (default 2s,
		// doubling up to a minute).
		PushTimeout    string `yaml:"pushTimeout"`
		ResolveTimeout string `yaml:"resolveTimeout"`
		ResolveBackoff string `yaml:"resolveBackoff"`
		// Maintenance keeps the warm clone packed (defaults: 1500 loose
		// objects, 12 packs, every 1h); disabled: true turns it off.
		Maintenance struct {
			Disabled     bool   `yaml:"disabled"`
			LooseObjects int    `yaml:"looseObjects"`
			Packs        int    `yaml:"packs"`
			Interval     string `yaml:"interval"`
		} `yaml:"maintenance"`
	} `yaml:"repo"`
	Committer struct {
		Name  string `yaml:"name"`
		Email string `yaml:"email"`
	} `yaml:"committer"`
	Identity struct {
		// EmailDomain turns a chat user "alice" into the commit author
		// alice <alice@EmailDomain> (the local chat; Slack reads emails).
		EmailDomain string `yaml:"emailDomain"`
	} `yaml:"identity"`
	Policy struct {
		Model  string `yaml:"model"`
		Policy string `yaml:"policy"`
	} `yaml:"policy"`
	Chat struct {
		ConfirmTimeout string `yaml:"confirmTimeout"`
		// ConfirmKeyFile holds the key (at least 32 bytes) that signs the
		// Confirm buttons of plans, so that any replica (or this one after
		// a restart) can act on the answer; absent: plans wait in memory.
		ConfirmKeyFile string `yaml:"confirmKeyFile"`
		Channel        string `yaml:"channel"`
	} `yaml:"chat"`
	Signing struct {
		// Mode: required (default: shipbot refuses to start without a usable
		// key), or off.
		Mode           string `yaml:"mode"`
		Format         string `yaml:"format"` // ssh or openpgp
		Key            string `yaml:"key"`    // private key file
		PassphraseFile string `yaml:"passphraseFile"`
		Trusted        struct {
			AllowedSigners []string `yaml:"allowedSigners"` // git's gpg.ssh.allowedSignersFile format
			OpenPGPKeys    []string `yaml:"openpgpKeys"`    // armored public keys
		} `yaml:"trusted"`
	} `yaml:"signing"`
	// Slack: shipbot serve's Slack settings; each key can be overridden by
	// its SHIPBOT_* environment variable (docs/slack.md). Secrets are files.
	Slack struct {
		Mode              string   `yaml:"mode"`
		BotTokenFile      string   `yaml:"botTokenFile"`
		AppTokenFile      string   `yaml:"appTokenFile"`
		SigningSecretFile string   `yaml:"signingSecretFile"`
		Listen            string   `yaml:"listen"`
		APIURL            string   `yaml:"apiURL"`
		Command           string   `yaml:"command"`
		EmailDomains      []string `yaml:"emailDomains"`
		SubjectsFile      string   `yaml:"subjectsFile"`
		// UserGroups maps Slack user group ids to policy group names.
		// Absent: every user group, as slack:HANDLE; {}: groups off.
		UserGroups map[string]string `yaml:"userGroups"`
		CacheTTL   string            `yaml:"cacheTTL"`
		// ReviewChannel is the channel id where every proposal's Approve
		// and Reject buttons are posted too.
		ReviewChannel string `yaml:"reviewChannel"`
	} `yaml:"slack"`
	// Argo: the Argo CD that syncs the environment repo; absent: shipbot
	// reports the commit only.
	Argo *struct {
		Server             string `yaml:"server"`
		TokenFile          string `yaml:"tokenFile"`
		TokenEnv           string `yaml:"tokenEnv"`
		CAFile             string `yaml:"caFile"`
		InsecureSkipVerify bool   `yaml:"insecureSkipVerify"`
		SyncManual         bool   `yaml:"syncManual"`
		Timeout            string `yaml:"timeout"`
	} `yaml:"argo"`
	// Registry: where rollback and promote check that the tag exists
	// and resolve its digest; absent: tags are not checked.
	Registry *struct {
		DockerConfig string   `yaml:"dockerConfig"`
		Insecure     []string `yaml:"insecure"`
		Timeout      string   `yaml:"timeout"`
		OnError      string   `yaml:"onError"`
	} `yaml:"registry"`
	// Render: how plans are checked by rendering the app before and after
	// the change (kustomize renders in-process; Helm charts in the repo
	// need the helm binary).
	Render struct {
		Helm        string `yaml:"helm"` // auto (helm on PATH, the default), off, or the binary's path
		Timeout     string `yaml:"timeout"`
		KubeVersion string `yaml:"kubeVersion"` // the clusters' Kubernetes version charts render for
	} `yaml:"render"`
	// Justification: live checks of --why against PagerDuty, Jira and
	// Opsgenie; absent: the reason's format is checked only.
	// Forge: where changes that need review are proposed; absent: such
	// changes are refused.
	// Alerts: shipbot serve takes Alertmanager, PagerDuty and Opsgenie
	// webhooks and posts one message per incident in Channel (a Slack
	// channel id), with what changed for the app and a Rollback button.
	Alerts *struct {
		Channel      string `yaml:"channel"`
		alert.Config `yaml:",inline"`
	} `yaml:"alerts"`
	// HA: several shipbot serve replicas in Kubernetes elect the one that
	// writes to the environment repo, holds the Slack connection and
	// watches, with a coordination.k8s.io/v1 Lease.
	HA struct {
		Enabled bool `yaml:"enabled"`
		// Lease is the Lease's name (default shipbot- and a hash of the
		// repo URL and branch: one Lease per environment repo).
		Lease         string `yaml:"lease"`
		Namespace     string `yaml:"namespace"` // default: the pod's
		LeaseDuration string `yaml:"leaseDuration"`
		RenewDeadline string `yaml:"renewDeadline"`
		RetryPeriod   string `yaml:"retryPeriod"`
		// Server, TokenFile and CAFile reach an API server from outside a
		// pod (default: the pod's service account); Namespace is then
		// required.
		Server    string `yaml:"server"`
		TokenFile string `yaml:"tokenFile"`
		CAFile    string `yaml:"caFile"`
	} `yaml:"ha"`
	Forge *struct {
		Type              string `yaml:"type"` // git or github
		ProposalTTL       string `yaml:"proposalTTL"`
		ReconcileInterval string `yaml:"reconcileInterval"`
		GitHub            *struct {
			BaseURL           string            `yaml:"baseURL"`
			Owner             string            `yaml:"owner"`
			Repo              string            `yaml:"repo"`
			TokenFile         string            `yaml:"tokenFile"`
			WebhookSecretFile string            `yaml:"webhookSecretFile"`
			Logins            map[string]string `yaml:"logins"`
			Teams             map[string]string `yaml:"teams"`
			Labels            []string          `yaml:"labels"`
			App               *struct {
				ID             int64  `yaml:"id"`
				InstallationID int64  `yaml:"installationID"`
				PrivateKeyFile string `yaml:"privateKeyFile"`
			} `yaml:"app"`
		} `yaml:"github"`
	} `yaml:"forge"`
	Justification policy.LiveOptions `yaml:"justification"`
	Freezes       struct {
		// Blocks: the actions a `freeze ENV` blocks (default [promote]).
		Blocks  []string `yaml:"blocks"`
		Windows []struct {
			Name     string   `yaml:"name"`
			Envs     []string `yaml:"envs"`
			Actions  []string `yaml:"actions"`
			Timezone string   `yaml:"timezone"`
			From     string   `yaml:"from"`
			To       string   `yaml:"to"`
		} `yaml:"windows"`
	} `yaml:"freezes"`
	Environments []struct {
		Name      string `yaml:"name"`
		Cluster   string `yaml:"cluster"`
		Protected bool   `yaml:"protected"`
	} `yaml:"environments"`
	Apps map[string]App `yaml:"apps"`
}

// App is one app: defaults for all its environments, and the environments.
type App struct {
	AppEnv `yaml:",inline"`
	Envs   map[string]AppEnv `yaml:"envs"`
}

// AppEnv is where an app lives in one environment; empty fields inherit the app's.
type AppEnv struct {
	Path            string `yaml:"path"`
	Layout          string `yaml:"layout"`
	Image           string `yaml:"image"`
	TagPath         string `yaml:"tagPath"`
	AnnotationsPath string `yaml:"annotationsPath"`
	// DigestPath (helm) is where the values pin the image's digest, e.g.
	// image.digest: kept consistent with the tag, or cleared and said.
	DigestPath string `yaml:"digestPath"`
	// ValuesFiles (helm) is the environment's stack of values files in
	// Helm's order, the last wins and must be path, the file edits go to.
	ValuesFiles []string `yaml:"valuesFiles"`
	// Chart (helm) is the chart's directory in the repo, when it is not the
	// values file's directory or chart/ beside it.
	Chart string `yaml:"chart"`
	// Names are the image's other names: the ones it had before a
	// registry move (history follows them), a kustomize newName.
	Names   []string `yaml:"names"`
	ArgoApp string   `yaml:"argoApp"`
}

// dnsName is a Kubernetes object name (RFC 1123 subdomain).
var dnsName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// HA configures the Lease that elects the replica writing to the repo.
type HA struct {
	Lease, Namespace                          string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration // 0 = the defaults
	// Server, TokenFile (absolute) and CAFile (absolute, "" = the system's
	// roots) reach the API server from outside a pod; "" = in-cluster.
	Server, TokenFile, CAFile string
}

// Config is the validated configuration, paths resolved against the
// directory of the config file.
type Config struct {
	Path     string // the config file
	RepoURL  string
	Branch   string
	CacheDir string
	// PushTimeout, ResolveTimeout and ResolveBackoff: pushes and the
	// background looks at unknown push outcomes (0 = the service's default).
	PushTimeout, ResolveTimeout, ResolveBackoff time.Duration
	// Maintenance: how the warm clone is kept packed.
	Maintenance    repo.Maintenance
	Committer      gitops.Person
	EmailDomain    string
	PolicyModel    string // "" = the embedded default model
	PolicyFile     string
	ConfirmTimeout time.Duration
	ConfirmKeyFile string // absolute; "" = plans wait in memory only
	// Alerts is the alert intake of shipbot serve (secret file paths
	// absolute); nil: none. AlertsChannel is where incidents are posted.
	Alerts        *alert.Config
	AlertsChannel string
	// HA is the leader election of shipbot serve; nil: one replica.
	HA            *HA
	Channel       string
	Signing       Signing
	FreezeBlocks  []gitops.Action
	FreezeWindows []gitops.FreezeWindow
	// Live is set when any live justification check is configured; secret
	// file paths are absolute.
	Live *policy.LiveOptions
	Argo *Argo
	// Registry is where tags are checked; nil: they are not.
	Registry *Registry
	// Render says how plans are checked by rendering. Helm is "auto" (look
	// for helm on PATH when shipbot starts), "" (off) or a path.
	Render edit.RenderOptions
	// Forge is where changes that need review are proposed; nil: none.
	Forge *Forge
	// Slack holds shipbot serve's Slack settings from the file, keyed by the
	// SHIPBOT_* environment variable that overrides each.
	Slack   map[string]string
	Catalog *gitops.Catalog

	// lines is the line of every key path of the file; problems are the
	// key paths problems were reported at (LoadForCheck).
	lines    map[string]int
	problems []string
}

// Where names a key path of the file for a problem: "signing.key (line
// 12)", or the key path alone when the file does not set it.
func (c *Config) Where(key string) string {
	if line, ok := c.lines[key]; ok {
		return fmt.Sprintf("%s (line %d)", key, line)
	}
	return key
}

// Set reports whether the file sets key.
func (c *Config) Set(key string) bool {
	_, ok := c.lines[key]
	return ok
}

// HasProblem reports whether a problem was reported at key or under it
// (LoadForCheck).
func (c *Config) HasProblem(key string) bool {
	for _, p := range c.problems {
		if p == key || strings.HasPrefix(p, key+".") || strings.HasPrefix(p, key+"[") {
			return true
		}
	}
	return false
}

// slackKeys maps the variables `shipbot serve` reads to the slack: keys of
// the file that set them (a secret's value variable to its file's key).
var slackKeys = map[string]string{
	"SHIPBOT_SLACK_MODE": "slack.mode", "SHIPBOT_SLACK_BOT_TOKEN_FILE": "slack.botTokenFile", "SHIPBOT_SLACK_BOT_TOKEN": "slack.botTokenFile",
	"SHIPBOT_SLACK_APP_TOKEN_FILE": "slack.appTokenFile", "SHIPBOT_SLACK_APP_TOKEN": "slack.appTokenFile",
	"SHIPBOT_SLACK_SIGNING_SECRET_FILE": "slack.signingSecretFile", "SHIPBOT_SLACK_SIGNING_SECRET": "slack.signingSecretFile",
	"SHIPBOT_LISTEN": "slack.listen", "SHIPBOT_SLACK_API_URL": "slack.apiURL", "SHIPBOT_SLACK_COMMAND": "slack.command",
	"SHIPBOT_SLACK_EMAIL_DOMAINS": "slack.emailDomains", "SHIPBOT_SLACK_SUBJECTS_FILE": "slack.subjectsFile",
	"SHIPBOT_SLACK_USERGROUPS": "slack.userGroups", "SHIPBOT_SLACK_CACHE_TTL": "slack.cacheTTL",
	"SHIPBOT_SLACK_REVIEW_CHANNEL": "slack.reviewChannel",
}

// SlackKey returns the slack: key of the file that sets the variable env
// ("" when the file has none for it).
func SlackKey(env string) string { return slackKeys[env] }

// SlackVariables are the variables of serve's Slack settings, each with a
// key in the file.
func SlackVariables() []string {
	out := make([]string, 0, len(slackKeys))
	for k := range slackKeys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// kubeVersion is what a Kubernetes version may look like (1.31, 1.31.0).
var kubeVersion = regexp.MustCompile(`^1\.[0-9]+(\.[0-9]+)?$`)

// envName is what an environment variable's name may look like.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Argo is how to reach Argo CD to follow a change until it is live.
type Argo struct {
	Server             string
	TokenFile, CAFile  string
	TokenEnv           string // the environment variable holding the token, when not TokenFile
	InsecureSkipVerify bool
	SyncManual         bool          // sync apps without automated sync to our commit
	Timeout            time.Duration // how long to watch (default 5m)
}

// Registry is how rollback and promote check that a tag exists.
type Registry struct {
	DockerConfig string        // docker config.json or a pull secret's .dockerconfigjson; "" = $DOCKER_CONFIG, ~/.docker
	Insecure     []string      // registries (host[:port]) reached over plain HTTP
	Timeout      time.Duration // one lookup (default 10s)
	OnError      gitops.RegistryOnError
}

// Forge is where changes that need review become proposals.
type Forge struct {
	Type              string        // "git" or "github"
	ProposalTTL       time.Duration // how long a proposal stays open (default 7 days)
	ReconcileInterval time.Duration // how often serve re-reads open proposals (default 1m)
	GitHub            *GitHub
}

// GitHub is how to reach the repo's GitHub (or GitHub Enterprise).
type GitHub struct {
	BaseURL           string // "" = api.github.com; GitHub Enterprise: https://HOST/api/v3/
	Owner, Repo       string
	TokenFile         string // a token, or:
	AppID             int64  // a GitHub App installation
	InstallationID    int64
	PrivateKeyFile    string
	WebhookSecretFile string            // serve's /webhooks/github verifies X-Hub-Signature-256 with it
	Logins            map[string]string // chat user -> GitHub login: the explicit identity mapping
	Teams             map[string]string // policy group -> team slug to request reviews from
	Labels            []string
}

// Signing says how shipbot signs its commits and which keys the audit trusts.
type Signing struct {
	Required              bool
	Format                string // "ssh" or "openpgp"
	Key                   string
	PassphraseFile        string
	TrustedAllowedSigners []string
	TrustedOpenPGP        []string
}

// Error lists every problem found in a config file.
type Error struct {
	File     string
	Problems []string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s has %d problem(s):\n  - %s", e.File, len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// yaml.v3's message for a key that File does not have.
	unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type`)
	// An image name without tag or digest: a registry host may carry a port,
	// later path components may not contain ':'.
	imageComponent = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)
	registryHost   = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]+)?$`)
)

// validImage reports whether s is an image name without tag or digest.
func validImage(s string) bool {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		if i == 0 && len(parts) > 1 && (strings.ContainsAny(p, ".:") || p == "localhost") {
			if !registryHost.MatchString(p) {
				return false
			}
			continue
		}
		if !imageComponent.MatchString(p) {
			return false
		}
	}
	return true
}

// Load reads and validates a config file.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(file, data)
}

// Parse validates config data; file names it in errors and anchors relative paths.
func Parse(file string, data []byte) (*Config, error) {
	cfg, err := parse(file, data)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadForCheck reads a config file like Load and, when the file has
// problems, returns them (a *Error) together with what could be read, so
// that `shipbot check` can go on and validate what the rest names (policy,
// keys, tokens) in the same run. The Config is nil only when the file can't
// be read or is not YAML. HasProblem tells which keys had problems.
func LoadForCheck(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parse(file, data)
}

func parse(file string, data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: file, Problems: []string{fmt.Sprintf("not valid YAML: %v", err)}}
	}
	v := &validator{lines: map[string]int{}}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		// Report unknown keys, then validate the rest as if they were absent.
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &Error{File: file, Problems: []string{err.Error()}}
		}
		for _, e := range te.Errors {
			if m := unknownField.FindStringSubmatch(e); m != nil {
				v.problems = append(v.problems, fmt.Sprintf("line %s: unknown key %q (deploy/examples/shipbot.yaml shows every key)", m[1], m[2]))
			} else {
				v.problems = append(v.problems, e)
			}
		}
		f = File{}
		_ = yaml.Unmarshal(data, &f)
	}
	if len(doc.Content) == 1 {
		v.index("", doc.Content[0])
	}
	cfg := v.check(file, &f)
	cfg.lines, cfg.problems = v.lines, v.keys
	if len(v.problems) > 0 {
		return cfg, &Error{File: file, Problems: v.problems}
	}
	return cfg, nil
}

type validator struct {
	lines    map[string]int
	problems []string
	keys     []string // the key path of each problem reported with addf
}

// index records the line of every key path, e.g. "apps.checkout.envs.prod.path".
func (v *validator) index(prefix string, n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			v.lines[p] = n.Content[i].Line
			v.index(p, n.Content[i+1])
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			v.lines[p] = c.Line
			v.index(p, c)
		}
	}
}

// addf records a problem at key path p (or its nearest recorded parent).
func (v *validator) addf(p, format string, args ...any) {
	where := p
	for q := p; q != ""; {
		if line, ok := v.lines[q]; ok {
			where = fmt.Sprintf("%s (line %d)", p, line)
			break
		}
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
	}
	v.problems = append(v.problems, where+": "+fmt.Sprintf(format, args...))
	v.keys = append(v.keys, p)
}

// duration parses an optional positive duration at key p ("" = 0, the
// default of whoever reads it).
func (v *validator) duration(p, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		v.addf(p, "%q is not a positive duration; write e.g. 30s or 5m", s)
		return 0
	}
	return d
}

func (v *validator) check(file string, f *File) *Config {
	base := filepath.Dir(file)
	if a, err := filepath.Abs(base); err == nil {
		base = a // paths stay right whatever the working directory of a child process
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	cfg := &Config{Path: file, Catalog: &gitops.Catalog{Apps: map[string]map[string]gitops.Target{}}}

	cfg.RepoURL = f.Repo.URL
	switch {
	case f.Repo.URL == "":
		v.addf("repo.url", "required: the environment repo to write to, e.g. https://github.com/acme/env.git or file:///srv/env.git")
	case strings.Contains(f.Repo.URL, "://"):
		if strings.Contains(strings.SplitN(f.Repo.URL, "://", 2)[1], "@") && strings.HasPrefix(f.Repo.URL, "http") {
			v.addf("repo.url", "must not carry credentials; give the token through the environment or a file")
		}
	default:
		cfg.RepoURL = abs(f.Repo.URL) // a local path, relative to the config file
	}
	cfg.Branch = f.Repo.Branch
	if cfg.Branch == "" {
		cfg.Branch = "main"
	}
	cfg.CacheDir = abs(f.Repo.CacheDir)
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(base, ".shipbot-cache")
	}
	cfg.PushTimeout = v.duration("repo.pushTimeout", f.Repo.PushTimeout)
	cfg.ResolveTimeout = v.duration("repo.resolveTimeout", f.Repo.ResolveTimeout)
	cfg.ResolveBackoff = v.duration("repo.resolveBackoff", f.Repo.ResolveBackoff)
	m := f.Repo.Maintenance
	cfg.Maintenance = repo.Maintenance{Disabled: m.Disabled, LooseObjects: m.LooseObjects, Packs: m.Packs, Interval: v.duration("repo.maintenance.interval", m.Interval)}
	if m.LooseObjects < 0 {
		v.addf("repo.maintenance.looseObjects", "%d is negative; write a count, e.g. 1500", m.LooseObjects)
	}
	if m.Packs < 0 {
		v.addf("repo.maintenance.packs", "%d is negative; write a count, e.g. 12", m.Packs)
	}
	cfg.Committer = gitops.Person{Name: f.Committer.Name, Email: f.Committer.Email}
	if cfg.Committer.Name == "" {
		cfg.Committer.Name = "shipbot"
	}
	if cfg.Committer.Email == "" {
		cfg.Committer.Email = "shipbot@localhost"
	} else if !strings.Contains(cfg.Committer.Email, "@") || strings.ContainsAny(cfg.Committer.Email, "<> \n") {
		v.addf("committer.email", "%q is not an email address", cfg.Committer.Email)
	}
	cfg.EmailDomain = f.Identity.EmailDomain
	if cfg.EmailDomain == "" {
		cfg.EmailDomain = "users.shipbot.local"
	}
	cfg.PolicyModel = abs(f.Policy.Model)
	cfg.PolicyFile = abs(f.Policy.Policy)
	if cfg.PolicyFile == "" {
		v.addf("policy.policy", "required: a casbin policy file (shipbot denies everything without one), e.g. policy.csv; see deploy/examples/policy.csv")
	}
	cfg.ConfirmTimeout = 2 * time.Minute
	if s := f.Chat.ConfirmTimeout; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			v.addf("chat.confirmTimeout", "%q is not a positive duration; write e.g. 2m or 90s", s)
		} else {
			cfg.ConfirmTimeout = d
		}
	}
	cfg.ConfirmKeyFile = abs(f.Chat.ConfirmKeyFile)
	if a := f.Alerts; a != nil {
		c := a.Config
		if a.Channel == "" {
			v.addf("alerts.channel", "required: the Slack channel id where incident messages go, e.g. C0123456789")
		}
		for _, files := range c.SecretFiles() {
			for i := range *files {
				(*files)[i] = abs((*files)[i])
			}
		}
		if err := c.Validate(); err != nil {
			v.addf("alerts", "%v", err)
		}
		cfg.Alerts, cfg.AlertsChannel = &c, a.Channel
	}
	if h := f.HA; h.Enabled {
		cfg.HA = &HA{Lease: h.Lease, Namespace: h.Namespace,
			LeaseDuration: v.duration("ha.leaseDuration", h.LeaseDuration),
			RenewDeadline: v.duration("ha.renewDeadline", h.RenewDeadline),
			RetryPeriod:   v.duration("ha.retryPeriod", h.RetryPeriod)}
		cfg.HA.Server, cfg.HA.TokenFile, cfg.HA.CAFile = h.Server, abs(h.TokenFile), abs(h.CAFile)
		if h.Server != "" {
			if u, err := url.Parse(h.Server); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				v.addf("ha.server", "%q is not the URL of a Kubernetes API server, e.g. https://10.0.0.1:6443", h.Server)
			}
			if h.Namespace == "" {
				v.addf("ha.namespace", "required with ha.server: the namespace of the Lease")
			}
		}
		if cfg.HA.Lease == "" {
			sum := sha256.Sum256([]byte(cfg.RepoURL + "\x00" + cfg.Branch))
			cfg.HA.Lease = "shipbot-" + hex.EncodeToString(sum[:])[:12]
		} else if !dnsName.MatchString(cfg.HA.Lease) {
			v.addf("ha.lease", "%q is not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253)", cfg.HA.Lease)
		}
		if len(cfg.HA.Lease) > 253 {
			v.addf("ha.lease", "is %d characters long; a Kubernetes object name has at most 253", len(cfg.HA.Lease))
		}
	}
	cfg.Channel = f.Chat.Channel
	if cfg.Channel == "" {
		cfg.Channel = "#local"
	}

	sg := f.Signing
	switch sg.Mode {
	case "", "required":
		cfg.Signing.Required = true
	case "off":
	default:
		v.addf("signing.mode", "%q: use required (every commit signed) or off", sg.Mode)
	}
	cfg.Signing.Format = sg.Format
	switch sg.Format {
	case "ssh", "openpgp":
	case "":
		cfg.Signing.Format = "ssh"
	default:
		v.addf("signing.format", "%q: use ssh or openpgp", sg.Format)
	}
	cfg.Signing.Key, cfg.Signing.PassphraseFile = abs(sg.Key), abs(sg.PassphraseFile)
	if cfg.Signing.Required && sg.Key == "" {
		v.addf("signing.key", "required: every commit is signed; name an SSH or OpenPGP private key file (or set signing.mode: off)")
	}
	for _, p := range sg.Trusted.AllowedSigners {
		cfg.Signing.TrustedAllowedSigners = append(cfg.Signing.TrustedAllowedSigners, abs(p))
	}
	for _, p := range sg.Trusted.OpenPGPKeys {
		cfg.Signing.TrustedOpenPGP = append(cfg.Signing.TrustedOpenPGP, abs(p))
	}

	envs := map[string]bool{}
	if len(f.Environments) == 0 {
		v.addf("environments", "required: list the environments in promotion order, e.g. [{name: dev}, {name: staging}, {name: prod, protected: true}]")
	}
	for i, e := range f.Environments {
		p := fmt.Sprintf("environments[%d]", i)
		switch {
		case !dnsLabel.MatchString(e.Name):
			v.addf(p+".name", "%q is not a valid environment name: use lowercase letters, digits and '-'", e.Name)
		case envs[e.Name]:
			v.addf(p+".name", "environment %q is listed twice", e.Name)
		}
		envs[e.Name] = true
		cluster := e.Cluster
		if cluster == "" {
			cluster = e.Name
		}
		cfg.Catalog.Envs = append(cfg.Catalog.Envs, gitops.Environment{Name: e.Name, Cluster: cluster, Protected: e.Protected})
	}

	v.freezes(f, cfg, envs)
	sl := f.Slack
	cfg.Slack = map[string]string{}
	for k, val := range map[string]string{
		"SHIPBOT_SLACK_MODE": sl.Mode, "SHIPBOT_SLACK_BOT_TOKEN_FILE": abs(sl.BotTokenFile),
		"SHIPBOT_SLACK_APP_TOKEN_FILE": abs(sl.AppTokenFile), "SHIPBOT_SLACK_SIGNING_SECRET_FILE": abs(sl.SigningSecretFile),
		"SHIPBOT_LISTEN": sl.Listen, "SHIPBOT_SLACK_API_URL": sl.APIURL, "SHIPBOT_SLACK_COMMAND": sl.Command,
		"SHIPBOT_SLACK_EMAIL_DOMAINS": strings.Join(sl.EmailDomains, ","), "SHIPBOT_SLACK_SUBJECTS_FILE": abs(sl.SubjectsFile),
	} {
		if val != "" {
			cfg.Slack[k] = val
		}
	}
	if sl.ReviewChannel != "" {
		cfg.Slack["SHIPBOT_SLACK_REVIEW_CHANNEL"] = sl.ReviewChannel
	}
	if sl.CacheTTL != "" {
		cfg.Slack["SHIPBOT_SLACK_CACHE_TTL"] = sl.CacheTTL
	}
	if sl.UserGroups != nil {
		// Set even when empty: {} turns groups off.
		pairs := make([]string, 0, len(sl.UserGroups))
		for id, name := range sl.UserGroups {
			if strings.ContainsAny(id+name, ",= \t") || id == "" || name == "" {
				v.addf("slack.userGroups."+id, "want SLACK_GROUP_ID: policy-group, e.g. S0123ABC: sre or S0123ABC: slack:release")
				continue
			}
			pairs = append(pairs, id+"="+name)
		}
		sort.Strings(pairs)
		cfg.Slack["SHIPBOT_SLACK_USERGROUPS"] = strings.Join(pairs, ",")
	}
	if a := f.Argo; a != nil {
		cfg.Argo = &Argo{Server: a.Server, TokenFile: abs(a.TokenFile), TokenEnv: a.TokenEnv, CAFile: abs(a.CAFile), InsecureSkipVerify: a.InsecureSkipVerify, SyncManual: a.SyncManual, Timeout: 5 * time.Minute}
		if a.Server == "" {
			v.addf("argo.server", "required: Argo CD's URL, e.g. https://argocd.example.com")
		}
		switch {
		case a.TokenFile == "" && a.TokenEnv == "":
			v.addf("argo.tokenFile", "required (or argo.tokenEnv): a file holding the API token of an account with get and sync on applications")
		case a.TokenFile != "" && a.TokenEnv != "":
			v.addf("argo.tokenEnv", "set argo.tokenFile or argo.tokenEnv, not both")
		case a.TokenEnv != "" && !envName.MatchString(a.TokenEnv):
			v.addf("argo.tokenEnv", "%q is not an environment variable name; write e.g. SHIPBOT_ARGOCD_TOKEN", a.TokenEnv)
		}
		if a.Timeout != "" {
			d, err := time.ParseDuration(a.Timeout)
			if err != nil || d <= 0 {
				v.addf("argo.timeout", "%q is not a positive duration; write e.g. 5m", a.Timeout)
			} else {
				cfg.Argo.Timeout = d
			}
		}
	}
	v.registry(f, cfg, abs)
	v.render(f, cfg, abs)
	v.forge(f, cfg, abs)
	if j := f.Justification; j.PagerDuty != nil || j.Jira != nil || j.Opsgenie != nil {
		if j.PagerDuty != nil {
			j.PagerDuty.TokenFile = abs(j.PagerDuty.TokenFile)
		}
		if j.Jira != nil {
			j.Jira.TokenFile, j.Jira.EmailFile = abs(j.Jira.TokenFile), abs(j.Jira.EmailFile)
		}
		if j.Opsgenie != nil {
			j.Opsgenie.KeyFile = abs(j.Opsgenie.KeyFile)
		}
		cfg.Live = &j
	}

	if len(f.Apps) == 0 {
		v.addf("apps", "required: at least one app with its path per environment")
	}
	names := make([]string, 0, len(f.Apps))
	for n := range f.Apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		app := f.Apps[name]
		p := "apps." + name
		if !dnsLabel.MatchString(name) {
			v.addf(p, "%q is not a valid app name: use lowercase letters, digits and '-'", name)
		}
		if len(app.Envs) == 0 {
			v.addf(p+".envs", "required: the path of %s in each environment, e.g. envs: {prod: {path: apps/%s/overlays/prod}}", name, name)
		}
		v.fields(p, name, "", app.AppEnv)
		targets := map[string]gitops.Target{}
		envNames := make([]string, 0, len(app.Envs))
		for env := range app.Envs {
			envNames = append(envNames, env)
		}
		sort.Strings(envNames)
		for _, env := range envNames {
			ae := app.Envs[env]
			ep := p + ".envs." + env
			if !envs[env] {
				v.addf(ep, "unknown environment %q; declare it under environments", env)
				continue
			}
			v.fields(ep, name, env, ae)
			targets[env] = v.target(ep, p, name, env, app.AppEnv, ae)
		}
		cfg.Catalog.Apps[name] = targets
	}
	return cfg
}

// blockable are the actions a freeze may block.
var blockable = map[string]bool{"rollback": true, "restart": true, "promote": true}

var githubLogin = regexp.MustCompile(`^[A-Za-z0-9](-?[A-Za-z0-9]){0,38}$`)

func (v *validator) forge(f *File, cfg *Config, abs func(string) string) {
	fo := f.Forge
	if fo == nil {
		return
	}
	out := &Forge{Type: fo.Type, ProposalTTL: 7 * 24 * time.Hour, ReconcileInterval: time.Minute}
	cfg.Forge = out
	for _, d := range []struct {
		key, val string
		dst      *time.Duration
	}{{"forge.proposalTTL", fo.ProposalTTL, &out.ProposalTTL}, {"forge.reconcileInterval", fo.ReconcileInterval, &out.ReconcileInterval}} {
		if d.val == "" {
			continue
		}
		x, err := time.ParseDuration(d.val)
		if err != nil || x <= 0 {
			v.addf(d.key, "%q is not a positive duration; write e.g. 168h or 1m", d.val)
			continue
		}
		*d.dst = x
	}
	switch fo.Type {
	case "git":
		if fo.GitHub != nil {
			v.addf("forge.github", "only used with forge.type: github")
		}
		return
	case "github":
	case "":
		v.addf("forge.type", "required: git (proposal branches on the repo's own host, approvals in chat) or github (pull requests)")
		return
	default:
		v.addf("forge.type", "%q is not a forge shipbot knows; write git or github", fo.Type)
		return
	}
	g := fo.GitHub
	if g == nil {
		v.addf("forge.github", "required with forge.type: github (owner, repo, and tokenFile or app)")
		return
	}
	out.GitHub = &GitHub{BaseURL: g.BaseURL, Owner: g.Owner, Repo: g.Repo, TokenFile: abs(g.TokenFile),
		WebhookSecretFile: abs(g.WebhookSecretFile), Logins: g.Logins, Teams: g.Teams, Labels: g.Labels}
	if g.Owner == "" || g.Repo == "" {
		v.addf("forge.github", "owner and repo are required, e.g. owner: acme, repo: env")
	}
	if g.BaseURL != "" && !strings.HasPrefix(g.BaseURL, "https://") && !strings.HasPrefix(g.BaseURL, "http://") {
		v.addf("forge.github.baseURL", "%q is not a URL; GitHub Enterprise's is https://HOST/api/v3/", g.BaseURL)
	}
	switch {
	case g.TokenFile == "" && g.App == nil:
		v.addf("forge.github.tokenFile", "required (or forge.github.app): a file holding a token that may push branches and open pull requests")
	case g.TokenFile != "" && g.App != nil:
		v.addf("forge.github.app", "set forge.github.tokenFile or forge.github.app, not both")
	case g.App != nil:
		if g.App.ID <= 0 || g.App.InstallationID <= 0 || g.App.PrivateKeyFile == "" {
			v.addf("forge.github.app", "id, installationID and privateKeyFile are all required")
		}
		out.GitHub.AppID, out.GitHub.InstallationID, out.GitHub.PrivateKeyFile = g.App.ID, g.App.InstallationID, abs(g.App.PrivateKeyFile)
	}
	for _, file := range []struct{ key, path string }{
		{"forge.github.tokenFile", out.GitHub.TokenFile}, {"forge.github.app.privateKeyFile", out.GitHub.PrivateKeyFile},
		{"forge.github.webhookSecretFile", out.GitHub.WebhookSecretFile},
	} {
		if file.path == "" {
			continue
		}
		if _, err := os.Stat(file.path); err != nil {
			v.addf(file.key, "%s can't be read: %v", file.path, errors.Unwrap(err))
		}
	}
	users := make([]string, 0, len(g.Logins))
	for u := range g.Logins {
		users = append(users, u)
	}
	sort.Strings(users)
	seen := map[string]string{}
	for _, u := range users {
		login := g.Logins[u]
		if !githubLogin.MatchString(login) {
			v.addf("forge.github.logins."+u, "%q is not a GitHub login", login)
			continue
		}
		if other, dup := seen[strings.ToLower(login)]; dup {
			v.addf("forge.github.logins."+u, "GitHub login %q is mapped to both %s and %s: one human counts once, so a login maps to one chat user", login, other, u)
		}
		seen[strings.ToLower(login)] = u
	}
}

func (v *validator) freezes(f *File, cfg *Config, envs map[string]bool) {
	for i, a := range f.Freezes.Blocks {
		if !blockable[a] {
			v.addf(fmt.Sprintf("freezes.blocks[%d]", i), "%q: a freeze can block rollback, restart or promote", a)
		}
		cfg.FreezeBlocks = append(cfg.FreezeBlocks, gitops.Action(a))
	}
	for i, w := range f.Freezes.Windows {
		p := fmt.Sprintf("freezes.windows[%d]", i)
		fw := gitops.FreezeWindow{Name: w.Name}
		if w.Name == "" {
			v.addf(p+".name", "required: a name people will see in replies, e.g. weekend")
		}
		if len(w.Envs) == 0 {
			v.addf(p+".envs", "required: the environments it freezes, e.g. [prod]")
		}
		for j, e := range w.Envs {
			if !envs[e] {
				v.addf(fmt.Sprintf("%s.envs[%d]", p, j), "unknown environment %q", e)
			}
		}
		fw.Envs = w.Envs
		for j, a := range w.Actions {
			if !blockable[a] {
				v.addf(fmt.Sprintf("%s.actions[%d]", p, j), "%q: a freeze can block rollback, restart or promote", a)
			}
			fw.Actions = append(fw.Actions, gitops.Action(a))
		}
		loc, err := time.LoadLocation(w.Timezone)
		if w.Timezone == "" || err != nil {
			v.addf(p+".timezone", "%q: a time zone name such as Europe/Berlin or UTC", w.Timezone)
		}
		fw.Location = loc
		if fw.From, err = gitops.ParseWeekTime(w.From); err != nil {
			v.addf(p+".from", "%v", err)
		}
		if fw.To, err = gitops.ParseWeekTime(w.To); err != nil {
			v.addf(p+".to", "%v", err)
		}
		cfg.FreezeWindows = append(cfg.FreezeWindows, fw)
	}
}

// fields checks the keys written at one level (the app, or one of its
// environments), so that a mistake is reported once, where it was made.
func (v *validator) fields(p, app, env string, ae AppEnv) {
	if ae.Layout != "" && !edit.Layout(ae.Layout).Valid() {
		v.addf(p+".layout", "%q is not a layout: use kustomize, helm, manifest or application", ae.Layout)
	}
	if ae.Image != "" && !validImage(ae.Image) {
		v.addf(p+".image", "%q is not an image name without tag or digest, e.g. registry.example.com/shop/%s", ae.Image, app)
	}
	for _, kv := range [][2]string{{"tagPath", ae.TagPath}, {"annotationsPath", ae.AnnotationsPath}, {"digestPath", ae.DigestPath}} {
		if kv[1] == "" {
			continue
		}
		if err := edit.ValidateValuesPath(kv[1]); err != nil {
			reason := err.Error()
			var pe *edit.ValuesPathError
			if errors.As(err, &pe) {
				reason = fmt.Sprintf("%s at offset %d", pe.Reason, pe.Offset)
			}
			v.addf(p+"."+kv[0], "%q is not a dotted path like image.tag, server.extraContainers[0].image.tag or labels.\"app.kubernetes.io/version\" (%s)", kv[1], reason)
		}
	}
	if env == "" && ae.Path != "" {
		v.addf(p+".path", "a path belongs to each environment: envs: {%s: {path: ...}}", "prod")
	}
	if env == "" && len(ae.ValuesFiles) > 0 {
		v.addf(p+".valuesFiles", "values files belong to each environment: envs: {%s: {valuesFiles: [...]}}", "prod")
	}
	for i, n := range ae.Names {
		if !validImage(n) {
			v.addf(fmt.Sprintf("%s.names[%d]", p, i), "%q is not an image name without tag or digest", n)
		}
	}
	for i, f := range ae.ValuesFiles {
		if !inRepo(f) {
			v.addf(fmt.Sprintf("%s.valuesFiles[%d]", p, i), "%q must be relative to the repo root and stay inside it", f)
		}
	}
	if ae.Chart != "" && !inRepo(ae.Chart) {
		v.addf(p+".chart", "%q must be relative to the repo root and stay inside it", ae.Chart)
	}
}

// inRepo reports whether p is a path relative to the repo root that stays
// inside it.
func inRepo(p string) bool {
	clean := path.Clean(p)
	return p != "" && !path.IsAbs(p) && clean != ".." && !strings.HasPrefix(clean, "../") && !strings.Contains(p, "\\")
}

// target combines the app's defaults with one environment's keys and checks
// what only the combination can tell (a layout and image set somewhere, the
// path against the layout).
func (v *validator) target(p, appPath, app, env string, def, ae AppEnv) gitops.Target {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	t := gitops.Target{App: app, Env: env, ArgoApp: ae.ArgoApp, Location: edit.Location{
		Layout:          edit.Layout(pick(ae.Layout, def.Layout)),
		Path:            ae.Path,
		Image:           pick(ae.Image, def.Image),
		TagPath:         pick(ae.TagPath, def.TagPath),
		AnnotationsPath: pick(ae.AnnotationsPath, def.AnnotationsPath),
		DigestPath:      pick(ae.DigestPath, def.DigestPath),
		ValuesFiles:     ae.ValuesFiles,
		Chart:           pick(ae.Chart, def.Chart),
		Names:           ae.Names,
	}}
	if t.Names == nil {
		t.Names = def.Names
	}
	if t.Layout == "" {
		v.addf(p+".layout", "required: kustomize, helm, manifest or application (set it on the app, %s.layout, or per environment)", appPath)
	}
	if t.Image == "" {
		v.addf(p+".image", "required: the image name without tag (set it on the app, %s.image, or per environment)", appPath)
	}
	clean := path.Clean(t.Path)
	switch {
	case t.Path == "":
		v.addf(p+".path", "required: %s", pathHint(t.Layout, app, env))
	case !inRepo(t.Path):
		v.addf(p+".path", "%q must be relative to the repo root and stay inside it", t.Path)
	default:
		t.Path = clean
	}
	if t.Layout == edit.LayoutHelm && t.Path != "" && !strings.HasSuffix(t.Path, ".yaml") && !strings.HasSuffix(t.Path, ".yml") {
		v.addf(p+".path", "%q: for the helm layout the path is the values file, e.g. apps/%s/values-%s.yaml", t.Path, app, env)
	}
	if n := len(t.ValuesFiles); n > 0 && (t.Layout != edit.LayoutHelm || path.Clean(t.ValuesFiles[n-1]) != t.Path) {
		v.addf(p+".valuesFiles", "the helm layout's stack of values files in Helm's order, ending with path (%q), the file edits go to", t.Path)
	}
	if t.Layout == edit.LayoutApplication && t.Path != "" && !strings.HasSuffix(t.Path, ".yaml") && !strings.HasSuffix(t.Path, ".yml") {
		v.addf(p+".path", "%q: for the application layout the path is the Argo CD Application manifest, e.g. apps/%s-%s.yaml", t.Path, app, env)
	}
	return t
}

func pathHint(l edit.Layout, app, env string) string {
	switch l {
	case edit.LayoutHelm:
		return fmt.Sprintf("the Helm values file, e.g. apps/%s/values-%s.yaml", app, env)
	case edit.LayoutManifest:
		return fmt.Sprintf("the directory (or file) of manifests, e.g. apps/%s/%s", app, env)
	case edit.LayoutApplication:
		return fmt.Sprintf("the Argo CD Application manifest, e.g. apps/%s-%s.yaml", app, env)
	default:
		return fmt.Sprintf("the kustomize overlay directory, e.g. apps/%s/overlays/%s", app, env)
	}
}

// ErrNotFound is returned when no config file is given or found.
var ErrNotFound = errors.New("no config file")

// render checks the render: section.
func (v *validator) render(f *File, cfg *Config, abs func(string) string) {
	r := f.Render
	switch r.Helm {
	case "", "auto":
		cfg.Render.Helm = "auto"
	case "off":
		cfg.Render.Helm = ""
	default:
		cfg.Render.Helm = abs(r.Helm)
	}
	cfg.Render.Timeout = 30 * time.Second
	cfg.Render.KubeVersion = strings.TrimPrefix(r.KubeVersion, "v")
	if r.KubeVersion != "" && !kubeVersion.MatchString(cfg.Render.KubeVersion) {
		v.addf("render.kubeVersion", "%q is not a Kubernetes version; write e.g. 1.31.0", r.KubeVersion)
	}
	if r.Timeout != "" {
		d, err := time.ParseDuration(r.Timeout)
		if err != nil || d <= 0 {
			v.addf("render.timeout", "%q is not a positive duration; write e.g. 30s", r.Timeout)
		} else {
			cfg.Render.Timeout = d
		}
	}
}

// registry checks the registry: section.
func (v *validator) registry(f *File, cfg *Config, abs func(string) string) {
	r := f.Registry
	if r == nil {
		return
	}
	out := &Registry{DockerConfig: abs(r.DockerConfig), Timeout: 10 * time.Second, OnError: gitops.RegistryRefuse}
	for i, h := range r.Insecure {
		if !registryHost.MatchString(h) {
			v.addf(fmt.Sprintf("registry.insecure[%d]", i), "%q is not a registry host: write host or host:port as in the image name, e.g. 127.0.0.1:5000", h)
			continue
		}
		out.Insecure = append(out.Insecure, h)
	}
	if r.Timeout != "" {
		d, err := time.ParseDuration(r.Timeout)
		if err != nil || d <= 0 {
			v.addf("registry.timeout", "%q is not a positive duration; write e.g. 10s", r.Timeout)
		} else {
			out.Timeout = d
		}
	}
	if r.OnError != "" {
		out.OnError = gitops.RegistryOnError(r.OnError)
		if !out.OnError.Valid() {
			v.addf("registry.onError", "%q: use refuse (the plan is refused, nothing is written) or warn (the plan says the tag could not be checked)", r.OnError)
		}
	}
	cfg.Registry = out
}
