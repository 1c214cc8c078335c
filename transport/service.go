package transport

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/presenced/presenced/hub"
)

// The 403 details of the routes that one kind of token may not use.
const (
	detailServiceHasNoMe = "A service token acts for no user of its own, so it has no /users/me: " +
		"read or change a user's status at /users/{user_id}/status, and read presence at /users/{user_id}/presence or /users/presence"
	detailUserNotService = "Only a service token may use /users/{user_id}/status (a token whose scope claim lists " +
		"presenced:service); a user reads and changes their own status at /users/me/status"
)

// userOnly refuses service tokens on the routes of the caller's own
// status: a service is nobody's device and has no status of its own.
func userOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if callerOf(r).Service != "" {
			writeError(w, http.StatusForbidden, detailServiceHasNoMe)
			return
		}
		next(w, r)
	}
}

// serviceOnly lets only service tokens through: a user's token, even for
// the user's own id, gets 403, so that a stolen or curious user token
// cannot act for anyone else.
func serviceOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if callerOf(r).Service == "" {
			writeError(w, http.StatusForbidden, detailUserNotService)
			return
		}
		next(w, r)
	}
}

// pathUserID reads the {user_id} of the path, or answers 400 and returns
// false. me is the caller, for a user; a service has no me.
func pathUserID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	param := chi.URLParam(r, "user_id")
	// chi hands over the segment as sent when it holds escapes; read it
	// as the id the client wrote, so that the error quotes that.
	if p, err := url.PathUnescape(param); err == nil {
		param = p
	}
	if param == "me" {
		if who := callerOf(r); who.Service == "" {
			return who.UserID, true
		}
		writeError(w, http.StatusForbidden, detailServiceHasNoMe)
		return 0, false
	}
	id, err := parseUserID(param)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return 0, false
	}
	return id, true
}

// getUserStatus gives a service a user's whole status, as the user reads
// their own: busy fields and last_seen even while the user appears
// offline or hides it.
func (s *Server) getUserStatus(w http.ResponseWriter, r *http.Request) {
	userID, ok := pathUserID(w, r)
	if !ok {
		return
	}
	st, err := s.hub.Status(r.Context(), userID)
	if err != nil {
		writeHubError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toStatusJSON(st))
}

// updateUserStatus applies a service's change to a user's status. It is
// no heartbeat and comes from no device: the service is not the user's
// device, so it can make a user busy or appear offline, but not online.
// Every write is logged with the service's name and the user's id.
func (s *Server) updateUserStatus(w http.ResponseWriter, r *http.Request) {
	userID, ok := pathUserID(w, r)
	if !ok {
		return
	}
	var f statusFields
	var fields []string // the names given, for the log
	if !decodeBody(w, r, func(name string, value json.RawMessage) error {
		known, err := f.set(name, value)
		if known && err == nil {
			fields = append(fields, name)
		}
		return err
	}) {
		return
	}
	up, err := f.update()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	service := callerOf(r).Service
	st, err := s.hub.SetStatus(r.Context(), hub.StatusRequest{Client: hub.Client{UserID: userID}, Update: up})
	if err != nil {
		s.log.Warn("service status write failed", "service", service, "user_id", userID,
			"request_id", infoOf(r.Context()).id, "fields", fields, "err", err)
		writeHubError(w, err)
		return
	}
	s.log.Info("service status write", "service", service, "user_id", userID,
		"request_id", infoOf(r.Context()).id, "fields", fields)
	writeJSON(w, http.StatusOK, toStatusJSON(st))
}
