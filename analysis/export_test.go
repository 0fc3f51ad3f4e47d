package analysis

// DecodeFast exposes decodeFast to the differential test.
var DecodeFast = decodeFast

// TrimArrays exposes trimArrays to its fuzz test.
var TrimArrays = trimArrays
