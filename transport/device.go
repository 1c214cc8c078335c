package transport

import (
	"errors"
	"net/http"
)

// The device id travels in this header on REST and on the socket's
// handshake, or, from a browser (which cannot set headers on a
// WebSocket), in this query parameter of /ws.
const (
	DeviceHeader = "X-Device-ID"
	DeviceParam  = "device_id"
)

// maxDeviceID bounds a device id, in bytes: every node keeps it per
// socket and the store per heartbeat.
const maxDeviceID = 64

// errDeviceID says what a device id must look like.
var errDeviceID = errors.New(DeviceHeader + " (or " + DeviceParam + ") must be 1 to 64 visible ASCII characters, such as a UUID")

// deviceOf returns the request's device id: the header, else, for a
// socket, the query parameter; empty when the client sent none, as
// clients of the seed API do.
func deviceOf(r *http.Request, socket bool) (string, error) {
	vals, sent := r.Header[http.CanonicalHeaderKey(DeviceHeader)]
	if !sent && socket {
		vals, sent = r.URL.Query()[DeviceParam]
	}
	if !sent {
		return "", nil
	}
	if len(vals) != 1 || !validDeviceID(vals[0]) {
		return "", errDeviceID
	}
	return vals[0], nil
}

// validDeviceID reports whether id is a device id: opaque to the server,
// but short and printable, so that it is safe in logs, keys and JSON.
func validDeviceID(id string) bool {
	if len(id) == 0 || len(id) > maxDeviceID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
