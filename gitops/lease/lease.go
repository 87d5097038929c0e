// Package lease elects one writer per environment repo among shipbot's
// replicas with a Kubernetes coordination.k8s.io/v1 Lease, the object
// kube-controller-manager, kube-scheduler and every operator built on
// client-go elect their leaders with.
//
// It speaks the Lease API directly (GET, POST, and PUT with the object's
// resourceVersion: the API server's compare-and-swap) instead of importing
// client-go's leaderelection: measured here, client-go v0.31 for leader
// election alone adds 78 modules and a 36 MB binary, and would change the
// module graph the end-to-end Argo CD build is cached by. The algorithm is
// client-go's:
//
//   - a replica takes the Lease when nobody holds it, or when the record it
//     last saw has not changed for LeaseDuration by its own clock (clocks of
//     different nodes are never compared);
//   - the holder renews it every RetryPeriod;
//   - the holder stops acting as leader (Held is false) when it could not
//     renew for RenewDeadline, which is shorter than LeaseDuration: a
//     former leader has stopped writing before another replica can take
//     the Lease (fencing);
//   - on shutdown the holder releases the Lease, so that another replica
//     takes it at its next try instead of after LeaseDuration.
package lease

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configure an Elector.
type Options struct {
	// Server is the API server's URL, e.g. https://10.96.0.1:443.
	Server string
	// Client talks to it (TLS with the cluster's CA); default
	// http.DefaultClient with Timeout RetryPeriod.
	Client *http.Client
	// Token returns the bearer token for each call (a projected service
	// account token rotates: read it each time); nil: no token.
	Token func() (string, error)

	Namespace, Name string // the Lease
	Identity        string // this replica, e.g. its pod name

	LeaseDuration time.Duration // default 15s
	RenewDeadline time.Duration // default 10s, < LeaseDuration
	RetryPeriod   time.Duration // default 2s, < RenewDeadline

	Logger *slog.Logger
	Now    func() time.Time
	// Observe, if set, is told every change of leadership (metrics).
	Observe func(leading bool)
}

// Validate fills the defaults and checks the options.
func (o *Options) Validate() error {
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.RetryPeriod}
	}
	switch {
	case o.Server == "":
		return errors.New("lease: no API server")
	case o.Namespace == "" || o.Name == "":
		return errors.New("lease: namespace and name are required")
	case o.Identity == "":
		return errors.New("lease: an identity is required (the pod name)")
	case o.RenewDeadline >= o.LeaseDuration:
		return fmt.Errorf("lease: renew deadline %s must be shorter than the lease duration %s", o.RenewDeadline, o.LeaseDuration)
	case o.RetryPeriod >= o.RenewDeadline:
		return fmt.Errorf("lease: retry period %s must be shorter than the renew deadline %s", o.RetryPeriod, o.RenewDeadline)
	}
	return nil
}

// Service account files, as the kubelet mounts them in every pod.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// InCluster returns the Options of a pod: the API server from
// KUBERNETES_SERVICE_HOST/PORT, its CA and the pod's service account token
// (re-read at every call) and namespace from the service account mount.
func InCluster() (Options, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return Options{}, errors.New("lease: not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)")
	}
	ca, err := os.ReadFile(serviceAccountDir + "/ca.crt")
	if err != nil {
		return Options{}, fmt.Errorf("lease: the cluster's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return Options{}, errors.New("lease: the cluster's CA file holds no certificate")
	}
	ns, err := os.ReadFile(serviceAccountDir + "/namespace")
	if err != nil {
		return Options{}, fmt.Errorf("lease: the pod's namespace: %w", err)
	}
	return Options{
		Server:    "https://" + net.JoinHostPort(host, port),
		Client:    &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}},
		Token:     TokenFile(serviceAccountDir + "/token"),
		Namespace: strings.TrimSpace(string(ns)),
	}, nil
}

// External returns the Options of a replica outside the cluster: the API
// server's URL, a bearer token file (re-read at every call; "" = none) and
// the CA that signed the server's certificate ("" = the system's roots).
func External(server, tokenFile, caFile string) (Options, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		ca, err := os.ReadFile(caFile)
		if err != nil {
			return Options{}, fmt.Errorf("lease: the API server's CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return Options{}, fmt.Errorf("lease: %s holds no certificate", caFile)
		}
		tlsConfig.RootCAs = pool
	}
	o := Options{Server: server, Client: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}}
	if tokenFile != "" {
		o.Token = TokenFile(tokenFile)
	}
	return o, nil
}

// TokenFile reads a bearer token from path at every call.
func TokenFile(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		return strings.TrimSpace(string(b)), err
	}
}

// Elector takes and holds one Lease.
type Elector struct {
	o Options

	mu       sync.Mutex
	leading  bool
	renewed  time.Time // when we last wrote the Lease as its holder
	observed record    // the Lease as last read
	seenAt   time.Time // when observed last changed, by our clock
}

// New returns an Elector; Run starts it.
func New(o Options) (*Elector, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Elector{o: o}, nil
}

// Held says whether this replica holds the Lease now: it does, and renewed
// it less than RenewDeadline ago. Writers check it right before writing.
func (e *Elector) Held() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading && e.o.Now().Sub(e.renewed) < e.o.RenewDeadline
}

// Holder is who holds the Lease, as last read ("" = nobody).
func (e *Elector) Holder() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed.Holder
}

// Run tries to take the Lease until ctx ends. While it holds it, lead runs
// with a context that ends when the Lease is lost (or ctx ends); Run then
// returns ErrLost, or nil after releasing the Lease when ctx ended. A
// replica that lost its Lease should exit and start again as a standby.
func (e *Elector) Run(ctx context.Context, lead func(context.Context)) error {
	log := e.o.Logger.With("lease", e.o.Namespace+"/"+e.o.Name, "identity", e.o.Identity)
	tick := time.NewTicker(e.o.RetryPeriod)
	defer tick.Stop()
	log.Info("waiting for the lease")
	for !e.tryAcquireOrRenew(ctx, log) {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	log.Info("lease acquired: leading")
	e.observe(true)
	leadCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(leadCtx)
	}()
	var err error
	for {
		select {
		case <-ctx.Done():
		case <-tick.C:
			if e.tryAcquireOrRenew(ctx, log) {
				continue
			}
			if e.Held() {
				continue // a failed renewal; still within the deadline
			}
			err = ErrLost
		}
		break
	}
	// Stop leading before anything else: from here nothing may write.
	e.mu.Lock()
	e.leading = false
	e.mu.Unlock()
	stop()
	e.observe(false)
	if err != nil {
		log.Error("lease lost: stopped leading", "renewed", e.renewedAt())
		<-done
		return err
	}
	<-done
	e.release(log)
	return nil
}

// ErrLost: the Lease could not be renewed within the renew deadline, or
// another replica took it.
var ErrLost = errors.New("lease lost")

func (e *Elector) observe(leading bool) {
	if e.o.Observe != nil {
		e.o.Observe(leading)
	}
}

func (e *Elector) renewedAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.renewed
}

// record is what the Lease says, in the API's field names.
type record struct {
	Holder      string
	Duration    time.Duration
	Acquired    time.Time
	Renewed     time.Time
	Transitions int32
	version     string // metadata.resourceVersion
}

func (r record) same(o record) bool {
	return r.Holder == o.Holder && r.Renewed.Equal(o.Renewed) && r.version == o.version
}

// tryAcquireOrRenew reads the Lease and writes it as ours when it is free,
// expired (by our observation) or ours; it reports whether we hold it now.
func (e *Elector) tryAcquireOrRenew(ctx context.Context, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(ctx, e.o.RetryPeriod)
	defer cancel()
	now := e.o.Now()
	cur, exists, err := e.get(ctx)
	if err != nil {
		log.Warn("lease: read failed", "err", err)
		return false
	}
	e.mu.Lock()
	if !exists || !cur.same(e.observed) {
		e.observed, e.seenAt = cur, now
	}
	seenAt := e.seenAt
	e.mu.Unlock()

	next := record{Holder: e.o.Identity, Duration: e.o.LeaseDuration, Acquired: now, Renewed: now, Transitions: cur.Transitions, version: cur.version}
	switch {
	case !exists:
		if err := e.create(ctx, next); err != nil {
			log.Info("lease: create lost", "err", err)
			return false
		}
	case cur.Holder == e.o.Identity:
		next.Acquired = cur.Acquired
		if err := e.update(ctx, next); err != nil {
			log.Warn("lease: renew failed", "err", err)
			return false
		}
	default:
		expired := cur.Holder == "" || now.Sub(seenAt) >= max(cur.Duration, time.Second)
		if !expired {
			// Another replica holds it: if we thought we did, we don't.
			e.mu.Lock()
			e.leading = false
			e.mu.Unlock()
			return false
		}
		next.Transitions = cur.Transitions + 1
		if err := e.update(ctx, next); err != nil {
			log.Info("lease: take-over lost", "holder", cur.Holder, "err", err)
			return false
		}
		log.Info("lease taken over", "from", cur.Holder)
	}
	e.mu.Lock()
	e.leading, e.renewed = true, now
	e.observed, e.seenAt = next, now
	e.mu.Unlock()
	return true
}

// release hands the Lease back (holder cleared) if it is still ours.
func (e *Elector) release(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), e.o.RetryPeriod)
	defer cancel()
	cur, exists, err := e.get(ctx)
	if err != nil || !exists || cur.Holder != e.o.Identity {
		return
	}
	now := e.o.Now()
	cur.Holder, cur.Duration, cur.Renewed = "", time.Second, now
	if err := e.update(ctx, cur); err != nil {
		log.Warn("lease: release failed; another replica takes it after the lease duration", "err", err)
		return
	}
	log.Info("lease released")
}

// The Lease object, as the API server reads and writes it.
type leaseObject struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       leaseSpec  `json:"spec"`
}

type objectMeta struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace,omitempty"`
	ResourceVersion string            `json:"resourceVersion,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
}

type leaseSpec struct {
	HolderIdentity       *string `json:"holderIdentity,omitempty"`
	LeaseDurationSeconds *int32  `json:"leaseDurationSeconds,omitempty"`
	AcquireTime          *string `json:"acquireTime,omitempty"`
	RenewTime            *string `json:"renewTime,omitempty"`
	LeaseTransitions     *int32  `json:"leaseTransitions,omitempty"`
}

// microTime is the API's MicroTime format.
const microTime = "2006-01-02T15:04:05.000000Z07:00"

func (e *Elector) object(r record) leaseObject {
	secs := int32(r.Duration / time.Second)
	acq, ren := r.Acquired.UTC().Format(microTime), r.Renewed.UTC().Format(microTime)
	holder, tr := r.Holder, r.Transitions
	return leaseObject{
		APIVersion: "coordination.k8s.io/v1", Kind: "Lease",
		Metadata: objectMeta{Name: e.o.Name, Namespace: e.o.Namespace, ResourceVersion: r.version,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "shipbot"}},
		Spec: leaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &acq, RenewTime: &ren, LeaseTransitions: &tr},
	}
}

func parseRecord(o leaseObject) record {
	r := record{version: o.Metadata.ResourceVersion}
	if o.Spec.HolderIdentity != nil {
		r.Holder = *o.Spec.HolderIdentity
	}
	if o.Spec.LeaseDurationSeconds != nil {
		r.Duration = time.Duration(*o.Spec.LeaseDurationSeconds) * time.Second
	}
	if o.Spec.LeaseTransitions != nil {
		r.Transitions = *o.Spec.LeaseTransitions
	}
	parse := func(s *string) time.Time {
		if s == nil {
			return time.Time{}
		}
		t, _ := time.Parse(time.RFC3339Nano, *s)
		return t
	}
	r.Acquired, r.Renewed = parse(o.Spec.AcquireTime), parse(o.Spec.RenewTime)
	return r
}

func (e *Elector) collection() string {
	return strings.TrimRight(e.o.Server, "/") + "/apis/coordination.k8s.io/v1/namespaces/" + url.PathEscape(e.o.Namespace) + "/leases"
}

func (e *Elector) get(ctx context.Context) (record, bool, error) {
	var o leaseObject
	status, err := e.call(ctx, http.MethodGet, e.collection()+"/"+url.PathEscape(e.o.Name), nil, &o)
	switch {
	case err != nil:
		return record{}, false, err
	case status == http.StatusNotFound:
		return record{}, false, nil
	}
	return parseRecord(o), true, nil
}

func (e *Elector) create(ctx context.Context, r record) error {
	r.version = ""
	status, err := e.call(ctx, http.MethodPost, e.collection(), e.object(r), nil)
	if err == nil && status == http.StatusConflict {
		err = errors.New("another replica created it first")
	}
	return err
}

func (e *Elector) update(ctx context.Context, r record) error {
	status, err := e.call(ctx, http.MethodPut, e.collection()+"/"+url.PathEscape(e.o.Name), e.object(r), nil)
	if err == nil && status == http.StatusConflict {
		err = errors.New("the lease changed since it was read")
	}
	return err
}

// call sends one request; 404 and 409 are answers (status), other non-2xx
// statuses are errors with the API's message.
func (e *Elector) call(ctx context.Context, method, u string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.o.Token != nil {
		tok, err := e.o.Token()
		if err != nil {
			return 0, fmt.Errorf("service account token: %w", err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := e.o.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusConflict:
		return resp.StatusCode, nil
	case resp.StatusCode/100 != 2:
		var st struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &st)
		if st.Message == "" {
			st.Message = http.StatusText(resp.StatusCode)
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, "leases/"+e.o.Name, resp.StatusCode, st.Message)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode the lease: %w", err)
		}
	}
	return resp.StatusCode, nil
}
