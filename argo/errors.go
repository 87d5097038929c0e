package argo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Sentinels callers act on (errors.Is).
var (
	// ErrUnauthenticated: the token was refused (expired, revoked, wrong server).
	ErrUnauthenticated = errors.New("argo: token refused")
	// ErrPermissionDenied: the token's account may not do this. Argo CD also
	// answers this for an application that does not exist.
	ErrPermissionDenied = errors.New("argo: permission denied")
	// ErrNotFound: no such object.
	ErrNotFound = errors.New("argo: not found")
	// ErrOperationInProgress: a sync was refused because another operation
	// on the app is still running.
	ErrOperationInProgress = errors.New("argo: another operation is already in progress")
	// ErrSyncWindow: a sync was refused because a sync window blocks it now
	// (or a window of the project is invalid). Argo CD answers it with
	// PermissionDenied (HTTP 403, gRPC 7) and "cannot sync: blocked by sync
	// window" (v2.14 and v3; older servers: "Cannot sync: Blocked by sync
	// window"): it is not ErrPermissionDenied.
	ErrSyncWindow = errors.New("argo: blocked by a sync window")
	// ErrOverrideRequired: a sync to a revision other than the app's
	// targetRevision was refused because the account lacks the override
	// privilege, which Argo CD demands for it when argocd-cm sets
	// application.sync.requireOverridePrivilegeForRevisionSync (v3.3 and
	// later; its docs recommend it and plan it as the default): "permission
	// denied: applications, override, <project>/<app>, sub: ...". It is
	// also ErrPermissionDenied.
	ErrOverrideRequired = errors.New("argo: override privilege required")

	// ErrNoApp: no Application deploys the target (discovery).
	ErrNoApp = errors.New("no Argo CD Application deploys this target")
	// ErrAmbiguousApp: several Applications deploy the target (discovery).
	ErrAmbiguousApp = errors.New("several Argo CD Applications deploy this target")

	// ErrDegraded: our revision synced but the app is Degraded.
	ErrDegraded = errors.New("app degraded")
	// ErrSyncFailed: the sync operation for our revision failed.
	ErrSyncFailed = errors.New("sync failed")
	// ErrTimeout: the app did not reach Synced and Healthy at our revision in time.
	ErrTimeout = errors.New("timed out waiting for sync")
	// ErrAppDeleted: the app was deleted while shipbot watched it.
	ErrAppDeleted = errors.New("app deleted")
)

// APIError is an answer of the API server other than 2xx, or an error
// message on the watch stream. Message is the server's own text with the
// token, should the server echo it, blanked out.
type APIError struct {
	Method     string
	Path       string
	StatusCode int    // HTTP status
	Code       int    // gRPC status code, when the server sent one
	Message    string // the server's message
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("argo: %s %s: %d %s", e.Method, e.Path, e.StatusCode, msg)
}

// gRPC codes the gateway passes on.
const (
	grpcFailedPrecondition = 9
	grpcUnauthenticated    = 16
	grpcPermissionDenied   = 7
	grpcNotFound           = 5
)

// Is maps the status onto the sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthenticated:
		return e.StatusCode == http.StatusUnauthorized || e.Code == grpcUnauthenticated
	case ErrPermissionDenied:
		return (e.StatusCode == http.StatusForbidden || e.Code == grpcPermissionDenied) && !e.syncWindow()
	case ErrSyncWindow:
		return e.syncWindow()
	case ErrOverrideRequired:
		return (e.StatusCode == http.StatusForbidden || e.Code == grpcPermissionDenied) &&
			strings.Contains(e.Message, "applications, override,")
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound || e.Code == grpcNotFound
	case ErrOperationInProgress:
		return (e.StatusCode == http.StatusBadRequest || e.Code == grpcFailedPrecondition) &&
			strings.Contains(e.Message, "another operation is already in progress")
	}
	return false
}

// syncWindow reports whether the server refused because of a sync window:
// the server's own words, whatever the status it came with.
func (e *APIError) syncWindow() bool {
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "cannot sync") && strings.Contains(m, "sync window")
}

// Temporary reports whether trying again later may help: server errors,
// throttling, and an operation still in progress.
func (e *APIError) Temporary() bool {
	switch {
	case e.StatusCode >= 500, e.StatusCode == http.StatusTooManyRequests, e.StatusCode == http.StatusRequestTimeout:
		return true
	}
	return e.Is(ErrOperationInProgress)
}

// permanent reports whether err will not go away by retrying: the API
// server answered with a client error. Network failures, timeouts and
// server errors are worth another try.
func permanent(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && !ae.Temporary()
}

// apiError reads an error answer: grpc-gateway's {"error","code","message"}
// body, or any text a proxy in front sent.
func apiError(method, path string, resp *http.Response, token string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	e := &APIError{Method: method, Path: path, StatusCode: resp.StatusCode}
	var body struct {
		Error   string `json:"error"`
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &body) == nil && (body.Message != "" || body.Error != "") {
		e.Code = body.Code
		e.Message = body.Message
		if e.Message == "" {
			e.Message = body.Error
		}
	} else {
		e.Message = strings.TrimSpace(string(b))
	}
	// Blank the token out before cutting, so no piece of it survives.
	e.Message = redact(e.Message, token)
	if len(e.Message) > 300 {
		e.Message = e.Message[:300] + "..."
	}
	return e
}

// redact blanks out the token wherever it appears.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[redacted]")
}
