package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// A push ends in one of three ways besides success:
//
//   - ErrNonFastForward: the remote moved; nothing was written (retry on
//     the new tip);
//   - a certain failure: the request never reached the remote's
//     receive-pack (it could not be reached, refused the connection or the
//     credentials, answered 503), or the remote reported that it refused it
//     (*RefusedError: a pre-receive hook, a protected branch); nothing was
//     written;
//   - ErrPushUnknown: the request may have reached the remote and no report
//     came back (the connection dropped, timed out, a proxy answered 502):
//     the push may have landed. Only a fetch can tell.

// ErrPushUnknown means the push may or may not have landed: the request was
// sent and the remote's report never arrived. Callers must look (fetch)
// before saying anything about the outcome.
var ErrPushUnknown = errors.New("the push's outcome is unknown")

// RefusedError is a push the remote answered and refused, with the
// remote's own words.
type RefusedError struct {
	Refs   string // the refs the push was to update
	Status string // the report's reason, e.g. "pre-receive hook declined"
	// Messages are the lines the remote printed (a hook's output), as
	// received: hostile text, to be normalised before it is shown.
	Messages []string
}

func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("push %s: refused by the remote: %s", e.Refs, e.Status)
	if len(e.Messages) > 0 {
		msg += " (remote: " + strings.Join(e.Messages, " | ") + ")"
	}
	return msg
}

// receivePackError classifies the error of a receive-pack request: rs is
// the remote's report when one was decoded.
func receivePackError(what string, rs *packp.ReportStatus, err error, remote []string) error {
	nff := translatePushError(what, err)
	if errors.Is(nff, ErrNonFastForward) {
		return nff
	}
	if rs != nil {
		// The remote answered: it refused, for sure.
		status := ""
		if rs.UnpackStatus != "ok" {
			status = "unpack " + rs.UnpackStatus
		}
		for _, c := range rs.CommandStatuses {
			if c.Status != "ok" {
				status = c.Status
				break
			}
		}
		if status == "" {
			status = err.Error()
		}
		return &RefusedError{Refs: what, Status: status, Messages: remote}
	}
	if notProcessed(err) {
		return fmt.Errorf("push %s: %w", what, err)
	}
	if len(remote) > 0 {
		err = fmt.Errorf("%w (remote: %s)", err, strings.Join(remote, " | "))
	}
	return fmt.Errorf("push %s: %w: %w", what, ErrPushUnknown, err)
}

// notProcessed reports whether an HTTP answer says the receive-pack request
// was not acted on: the credentials or the repository were refused, or the
// server was unavailable (503, 429). Other statuses (500, 502, 504) may come
// from a proxy after the request went through: unknown.
func notProcessed(err error) bool {
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) || errors.Is(err, transport.ErrRepositoryNotFound) {
		return true
	}
	code := httpStatus(err)
	return code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests || (code >= 400 && code < 500)
}

// httpStatus is the HTTP status of a go-git transport error (0: none).
func httpStatus(err error) int {
	code := 0
	walk(err, func(e error) bool {
		var he *githttp.Err
		if errors.As(e, &he) && he.Response != nil {
			code = he.Response.StatusCode
			return true
		}
		return false
	})
	return code
}

// walk calls f on err and every error it wraps, including the ones inside
// go-git's wrappers (which don't Unwrap), until f returns true.
func walk(err error, f func(error) bool) bool {
	for err != nil {
		if f(err) {
			return true
		}
		var ue *plumbing.UnexpectedError
		var pe *plumbing.PermanentError
		switch {
		case errors.As(err, &ue) && ue.Err != nil && ue.Err != err:
			if walk(ue.Err, f) {
				return true
			}
		case errors.As(err, &pe) && pe.Err != nil && pe.Err != err:
			if walk(pe.Err, f) {
				return true
			}
		}
		if m, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range m.Unwrap() {
				if walk(e, f) {
					return true
				}
			}
			return false
		}
		err = errors.Unwrap(err)
	}
	return false
}

// Describe says in one plain sentence what went wrong talking to the git
// remote, for chat: no URL, address, credential or dial error. "" when err
// is not about the remote.
func Describe(err error) string {
	var refused *RefusedError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrPushUnknown):
		return "the connection to the git remote broke during the push, before the remote said whether it took it"
	case errors.As(err, &refused):
		return "the git remote refused the push (" + refused.Status + ")"
	case errors.Is(err, ErrNonFastForward):
		return "the branch kept moving on the git remote"
	case errors.Is(err, ErrFenced):
		return "this shipbot replica lost its lease on the environment repo to another replica (it sent nothing)"
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return "the git remote refused shipbot's credentials"
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return "the git remote does not have the environment repo, or does not let shipbot see it"
	}
	if code := httpStatus(err); code != 0 {
		return fmt.Sprintf("the git remote answered HTTP %d (%s)", code, http.StatusText(code))
	}
	var what string
	walk(err, func(e error) bool {
		var ne net.Error
		var oe *net.OpError
		switch {
		case errors.Is(e, context.DeadlineExceeded) || errors.Is(e, os.ErrDeadlineExceeded) || (errors.As(e, &ne) && ne.Timeout()):
			what = "the git remote did not answer in time"
		case errors.Is(e, syscall.ECONNREFUSED) || (errors.As(e, &oe) && oe.Op == "dial"):
			what = "the git remote could not be reached"
		case errors.Is(e, io.ErrUnexpectedEOF) || errors.Is(e, io.EOF) || errors.Is(e, syscall.ECONNRESET) || errors.Is(e, syscall.EPIPE):
			what = "the connection to the git remote broke"
		case errors.As(e, &oe):
			what = "the network failed while talking to the git remote"
		case errors.Is(e, context.Canceled):
			what = "the request was cancelled while talking to the git remote"
		default:
			return false
		}
		return true
	})
	return what
}

// maxRemoteBytes bounds what is kept of the remote's messages.
const maxRemoteBytes = 4096

// remoteMessages collects what the remote prints on side-band channel 2.
type remoteMessages struct {
	mu  sync.Mutex
	buf []byte
}

func (m *remoteMessages) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if room := maxRemoteBytes - len(m.buf); room > 0 {
		m.buf = append(m.buf, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

// ansi matches terminal escape sequences (colours, cursor moves).
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]`)

// lines returns the remote's non-empty lines, without terminal escapes.
func (m *remoteMessages) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, l := range strings.FieldsFunc(ansi.ReplaceAllString(string(m.buf), ""), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
