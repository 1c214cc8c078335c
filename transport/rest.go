package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/presenced/presenced/hub"
)

// maxBodyBytes bounds a REST request body.
const maxBodyBytes = 64 << 10

func (s *Server) getMyStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.hub.Status(r.Context(), clientOf(r).UserID)
	if err != nil {
		writeHubError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toStatusJSON(st))
}

func (s *Server) updateMyStatus(w http.ResponseWriter, r *http.Request) {
	var f statusFields
	if !decodeBody(w, r, func(name string, value json.RawMessage) error {
		_, err := f.set(name, value)
		return err
	}) {
		return
	}
	up, err := f.update()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A REST client is alive as of this request: it has no socket to
	// prove it.
	st, err := s.hub.SetStatus(r.Context(), hub.StatusRequest{Client: clientOf(r), Update: up, Heartbeat: true})
	if err != nil {
		writeHubError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toStatusJSON(st))
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	if err := s.hub.Heartbeat(r.Context(), clientOf(r)); err != nil {
		writeHubError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Heartbeat received"})
}

func (s *Server) getPresence(w http.ResponseWriter, r *http.Request) {
	userID, ok := pathUserID(w, r)
	if !ok {
		return
	}
	// An id the caller may not read is answered as an unknown one.
	ids, _, err := s.readable(r.Context(), callerOf(r).Identity, []int64{userID})
	if err != nil {
		writeWatchError(w, err)
		return
	}
	ps, err := s.hub.Presences(r.Context(), ids)
	if err != nil {
		writeHubError(w, err)
		return
	}
	if len(ps) == 0 {
		writeError(w, http.StatusNotFound, "User status not found")
		return
	}
	writeJSON(w, http.StatusOK, toPresenceJSON(ps[0]))
}

func (s *Server) getPresences(w http.ResponseWriter, r *http.Request) {
	values := r.URL.Query()["user_ids"]
	if len(values) == 0 {
		writeError(w, http.StatusBadRequest, "Query parameter user_ids is required, e.g. ?user_ids=1,2,3")
		return
	}
	// ?user_ids=1,2 and ?user_ids=1&user_ids=2 mean the same.
	ids, err := ParseUserIDList(strings.Join(values, ","), s.cfg.MaxIDsPerRequest)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Ids the caller may not read are dropped, as unknown ones are.
	if ids, _, err = s.readable(r.Context(), callerOf(r).Identity, ids); err != nil {
		writeWatchError(w, err)
		return
	}
	ps, err := s.hub.Presences(r.Context(), ids)
	if err != nil {
		writeHubError(w, err)
		return
	}
	bp := bodyPool.Get().(*[]byte)
	body := append(appendPresences((*bp)[:0], ps), '\n') // as json.Encoder ends
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	if cap(body) <= 64<<10 { // do not keep a rare huge answer alive
		*bp = body
		bodyPool.Put(bp)
	}
}

// writeWatchError answers a request that the watch policy could not
// judge: refused, not allowed, and the caller may try again.
func writeWatchError(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, capitalize(err.Error())+"; try again later")
}

func capitalize(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// bodyPool holds the buffers batch presence answers are built in: 100
// presences are some 13 KB, written many times a second.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// devTokenRequest is the body of POST /dev/token, its members raw.
type devTokenRequest struct {
	UserID   json.RawMessage
	Username json.RawMessage
}

func (req *devTokenRequest) set(name string, value json.RawMessage) error {
	switch name {
	case "user_id":
		return setOnce(&req.UserID, name, value)
	case "username":
		return setOnce(&req.Username, name, value)
	}
	return nil
}

func (s *Server) devToken(w http.ResponseWriter, r *http.Request) {
	var req devTokenRequest
	if !decodeBody(w, r, req.set) {
		return
	}
	if req.UserID == nil {
		writeError(w, http.StatusBadRequest, "user_id is required")
		return
	}
	userID, err := parseUserID(string(req.UserID))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var username string
	if req.Username != nil && (req.Username[0] != '"' || json.Unmarshal(req.Username, &username) != nil) {
		writeError(w, http.StatusBadRequest, "username must be a string, not "+describe(req.Username))
		return
	}
	if err := checkUsername(username, s.cfg.MaxUsernameLength); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	token, err := s.cfg.DevTokens.Issue(userID, username)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Internal server error")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"access_token": token, "token_type": "bearer"})
}

// decodeBody reads a JSON object and hands each member to set (see
// decodeObject). An empty body reads as {}. On failure it answers the
// request and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, set func(name string, value json.RawMessage) error) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body is larger than %d bytes", maxBodyBytes))
		} else {
			writeError(w, http.StatusBadRequest, "Request body could not be read")
		}
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	if err := decodeObject(body, set); err != nil {
		switch {
		case errors.Is(err, errNotObject):
			writeError(w, http.StatusBadRequest, "Request body must be a JSON object")
		case strings.HasPrefix(err.Error(), "not valid JSON"):
			writeError(w, http.StatusBadRequest, "Request body is "+err.Error())
		default:
			writeError(w, http.StatusBadRequest, err.Error())
		}
		return false
	}
	return true
}
