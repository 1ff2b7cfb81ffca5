// Package s3err holds the one table of S3 errors the proxy answers with and
// the one function that writes them as S3 XML.
//
// Every error a client can see passes through Write. An error that is not an
// *Error becomes a plain InternalError, so internals never reach a client.
package s3err

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
)

// Code is an S3 error code with its default message and HTTP status.
type Code struct {
	Name    string
	Message string
	Status  int
}

// The S3 error codes the proxy uses. Messages follow the S3 API reference.
var (
	AccessDenied                      = Code{"AccessDenied", "Access Denied.", http.StatusForbidden}
	AuthorizationHeaderMalformed      = Code{"AuthorizationHeaderMalformed", "The authorization header is malformed.", http.StatusBadRequest}
	AuthorizationQueryParametersError = Code{"AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter.", http.StatusBadRequest}
	BadDigest                         = Code{"BadDigest", "The Content-MD5 or checksum value that you specified did not match what the server received.", http.StatusBadRequest}
	EntityTooLarge                    = Code{"EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.", http.StatusBadRequest}
	IncompleteBody                    = Code{"IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.", http.StatusBadRequest}
	InternalError                     = Code{"InternalError", "We encountered an internal error. Please try again.", http.StatusInternalServerError}
	InvalidAccessKeyID                = Code{"InvalidAccessKeyId", "The AWS access key ID that you provided does not exist in our records.", http.StatusForbidden}
	InvalidArgument                   = Code{"InvalidArgument", "Invalid Argument.", http.StatusBadRequest}
	InvalidBucketName                 = Code{"InvalidBucketName", "The specified bucket is not valid.", http.StatusBadRequest}
	InvalidChunkSizeError             = Code{"InvalidChunkSizeError", "Only the last chunk is allowed to have a size less than 8192 bytes.", http.StatusBadRequest}
	InvalidDigest                     = Code{"InvalidDigest", "The Content-MD5 or checksum value that you specified is not valid.", http.StatusBadRequest}
	InvalidEncryptionAlgorithm        = Code{"InvalidEncryptionAlgorithmError", "The encryption request that you specified is not valid.", http.StatusBadRequest}
	InvalidRequest                    = Code{"InvalidRequest", "Invalid Request.", http.StatusBadRequest}
	MalformedTrailerError             = Code{"MalformedTrailerError", "The request contained trailing data that was not well-formed or did not conform to our published schema.", http.StatusBadRequest}
	MethodNotAllowed                  = Code{"MethodNotAllowed", "The specified method is not allowed against this resource.", http.StatusMethodNotAllowed}
	MissingContentLength              = Code{"MissingContentLength", "You must provide the Content-Length HTTP header.", http.StatusLengthRequired}
	MissingSecurityHeader             = Code{"MissingSecurityHeader", "Your request is missing a required header.", http.StatusBadRequest}
	NotImplemented                    = Code{"NotImplemented", "A header or query you provided implies functionality that is not implemented.", http.StatusNotImplemented}
	RequestHeaderSectionTooLarge      = Code{"RequestHeaderSectionTooLarge", "Your request header section exceeds the maximum allowed size.", http.StatusBadRequest}
	RequestTimeTooSkewed              = Code{"RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.", http.StatusForbidden}
	ServiceUnavailable                = Code{"ServiceUnavailable", "The upstream S3 service could not be reached. Please try again.", http.StatusServiceUnavailable}
	BadGateway                        = Code{"BadGateway", "The upstream S3 service gave an answer the proxy could not use.", http.StatusBadGateway}
	GatewayTimeout                    = Code{"GatewayTimeout", "The upstream S3 service did not answer in time.", http.StatusGatewayTimeout}
	SignatureDoesNotMatch             = Code{"SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.", http.StatusForbidden}
	XAmzContentSHA256Mismatch         = Code{"XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.", http.StatusBadRequest}
)

// Error is an S3 error with a request-specific message. It holds no secret:
// messages name key ids and access keys at most, never keys or signatures.
type Error struct {
	Code    Code
	Message string // overrides Code.Message when set
}

// New returns an *Error for code with a formatted message; an empty format
// keeps the code's default message.
func New(code Code, format string, args ...any) *Error {
	e := &Error{Code: code}
	if format != "" {
		e.Message = fmt.Sprintf(format, args...)
	}
	return e
}

func (e *Error) Error() string { return e.Code.Name + ": " + e.message() }

// StatusCode is the HTTP status the error is answered with.
func (e *Error) StatusCode() int { return e.Code.Status }

func (e *Error) message() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Code.Message
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, s3err.New(s3err.AccessDenied, "")) matches by code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code.Name == e.Code.Name
}

// As returns err as an *Error; any other error becomes InternalError, whose
// message says nothing of err.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: InternalError}
}

type xmlError struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

// Write answers w with err as S3 XML. resource is the request path (never
// its query, which may hold a presigned signature). HEAD requests get the
// status alone, as S3 does.
func Write(w http.ResponseWriter, r *http.Request, err error, requestID string) *Error {
	e := As(err)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("x-amz-request-id", requestID)
	h.Del("Content-Length")
	w.WriteHeader(e.StatusCode())
	if r != nil && r.Method == http.MethodHead {
		return e
	}
	body := xmlError{Code: e.Code.Name, Message: e.message(), RequestID: requestID}
	if r != nil {
		body.Resource = r.URL.EscapedPath()
	}
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(body)
	return e
}

// Codes used for request targets.
var (
	KeyTooLongError = Code{"KeyTooLongError", "Your key is too long.", http.StatusBadRequest}
	NoSuchBucket    = Code{"NoSuchBucket", "The specified bucket does not exist.", http.StatusNotFound}
)

// Codes for conditions and documents.
var (
	PreconditionFailed = Code{"PreconditionFailed", "At least one of the pre-conditions you specified did not hold.", http.StatusPreconditionFailed}
	MalformedXML       = Code{"MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.", http.StatusBadRequest}
	InvalidPart        = Code{"InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.", http.StatusBadRequest}
)
