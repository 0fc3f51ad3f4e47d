package analysis

// DecodeFast exposes decodeFast to the differential test.
var DecodeFast = decodeFast
