package argo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// EventStream is an open application watch stream. Argo CD's gateway
// writes one JSON object per line: {"result":{"type":..,"application":..}}
// for an event, {"error":{"grpc_code":..,"http_code":..,"message":..}} when
// the server gives up. A watch for one app starts with an ADDED event that
// carries its current state.
type EventStream struct {
	body  io.ReadCloser
	r     *bufio.Reader
	path  string
	token string
}

// maxLine bounds one event (an Application with all its resources).
const maxLine = 32 << 20

// Watch opens the watch stream for one app (GET
// /api/v1/stream/applications?name=X). The stream lives until ctx ends,
// the server closes it, or Close; it has no timeout of its own.
func (c *Client) Watch(ctx context.Context, name string) (*EventStream, error) {
	ref := parseRef(name)
	q := url.Values{"name": {ref.name}}
	ref.query(q)
	const path = "/api/v1/stream/applications"
	// identity: a gzip writer in front of the gateway may hold events back.
	resp, err := c.do(ctx, http.MethodGet, path, q, nil, http.Header{"Accept-Encoding": {"identity"}})
	if err != nil {
		return nil, err
	}
	token, _ := c.token.get()
	return &EventStream{body: resp.Body, r: bufio.NewReaderSize(resp.Body, 64<<10), path: path, token: token}, nil
}

// Next returns the next event. It returns io.EOF when the server ended the
// stream cleanly, io.ErrUnexpectedEOF when it broke off inside a message,
// and an *APIError for an error message on the stream.
func (s *EventStream) Next() (WatchEvent, error) {
	for {
		line, err := s.readLine()
		if len(bytes.TrimSpace(line)) == 0 {
			if err != nil {
				return WatchEvent{}, err
			}
			continue
		}
		ev, derr := s.decode(line)
		if derr != nil && err != nil {
			// The last line had no newline and does not parse: cut short.
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return WatchEvent{}, err
		}
		return ev, derr
	}
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// readLine returns one line without its newline. A last line without a
// newline comes back with the read error.
func (s *EventStream) readLine() ([]byte, error) {
	var line []byte
	for {
		frag, err := s.r.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("argo: watch stream: event larger than %d bytes", maxLine)
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, err
		}
	}
}

func (s *EventStream) decode(line []byte) (WatchEvent, error) {
	var chunk struct {
		Result *WatchEvent `json:"result"`
		Error  *struct {
			GRPCCode int    `json:"grpc_code"`
			HTTPCode int    `json:"http_code"`
			Message  string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &chunk); err != nil {
		return WatchEvent{}, fmt.Errorf("argo: watch stream: %w", err)
	}
	switch {
	case chunk.Error != nil:
		return WatchEvent{}, &APIError{
			Method: http.MethodGet, Path: s.path,
			StatusCode: chunk.Error.HTTPCode, Code: chunk.Error.GRPCCode,
			Message: redact(chunk.Error.Message, s.token),
		}
	case chunk.Result == nil:
		return WatchEvent{}, errors.New("argo: watch stream: message with neither result nor error")
	}
	return *chunk.Result, nil
}
