// The plain-data pickle reader: Python 3 pickles of protocols 0, 2, 4 and 5
// (tests/fixtures/io/pickle, made by generate.py there; expected values repeat it),
// Python 2 cPickle-style pickles written out by hand (no Python 2 here), and hostile
// inputs: refused globals, truncations, lying lengths, deep or exploding structures.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <zlib.h>

#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "ood/error.hpp"
#include "ood/io/python_pickle.hpp"
#include "test_support.hpp"

namespace ood::io {
namespace {

namespace fs = std::filesystem;

// A bool tensor (at::tensor of bools is not implemented in LibTorch 1.13).
at::Tensor bools(std::initializer_list<int> values) { return at::tensor(std::vector<int>(values)).to(at::kBool); }

std::vector<std::uint8_t> file_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

PyValue parse(const std::string& bytes) {
  return parse_python_pickle(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "hand.pkl");
}

std::string pickle_error(const std::string& bytes) {
  try {
    parse(bytes);
  } catch (const FileError& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_error(const std::string& bytes, std::initializer_list<std::string> parts) {
  const std::string message = pickle_error(bytes);
  EXPECT_EQ(message.rfind("hand.pkl: ", 0), 0u) << message;
  for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

const std::string& bytes_of(const PyValue& v) { return std::get<PyValue::Bytes>(v.value).data; }

std::vector<std::int64_t> ints_of(const PyValue& v) {
  std::vector<std::int64_t> out;
  for (const auto& item : v.as_list("test")) out.push_back(item.as_int("test"));
  return out;
}

fs::path pickle_fixture(const std::string& name) { return test::fixture("io/pickle/" + name); }

// generate.py's cifar_like(): data[i][j] = (7 * (12 i + j)) % 256.
void expect_cifar_like(const PyValue& batch) {
  const PyDict& dict = batch.as_dict("batch");
  EXPECT_EQ(dict.size(), 4u);
  EXPECT_EQ(bytes_of(batch.at("batch_label", "batch")), "training batch 1 of 5");
  EXPECT_EQ(ints_of(batch.at("labels", "batch")), (std::vector<std::int64_t>{6, 9, 9}));
  const at::Tensor data = batch.at("data", "batch").as_array("data");
  ASSERT_EQ(data.scalar_type(), at::kByte);
  ASSERT_EQ(data.sizes(), (std::vector<std::int64_t>{3, 12}));
  const at::Tensor expected = at::arange(36, at::kLong).mul(7).remainder(256).to(at::kByte).reshape({3, 12});
  EXPECT_TRUE(at::equal(data, expected));
  const PyList& names = batch.at("filenames", "batch").as_list("filenames");
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(bytes_of(names[0]), "leptodactylus_pentadactylus_s_000004.png");
  EXPECT_EQ(bytes_of(names[2]), "tipper_truck_s_001250.png");
}

TEST(PickleFixtures, CifarLikeBatchEveryProtocol) {
  for (int protocol : {0, 2, 4, 5}) {
    SCOPED_TRACE("protocol " + std::to_string(protocol));
    expect_cifar_like(read_python_pickle(pickle_fixture("cifar_p" + std::to_string(protocol) + ".pkl")));
  }
}

TEST(PickleFixtures, MetaEveryProtocol) {
  for (int protocol : {0, 2, 4, 5}) {
    SCOPED_TRACE("protocol " + std::to_string(protocol));
    const PyValue meta = read_python_pickle(pickle_fixture("meta_p" + std::to_string(protocol) + ".pkl"));
    const PyList& names = meta.at("label_names", "meta").as_list("label_names");
    ASSERT_EQ(names.size(), 3u);
    EXPECT_EQ(std::get<std::string>(names[1].value), "automobile");  // Python 3 str is text
    EXPECT_EQ(meta.at("num_cases_per_batch", "meta").as_int("n"), 10000);
    EXPECT_EQ(meta.at("num_vis", "meta").as_int("n"), 3072);
  }
}

TEST(PickleFixtures, PlainValuesAndArraysEveryProtocol) {
  for (int protocol : {0, 2, 4, 5}) {
    SCOPED_TRACE("protocol " + std::to_string(protocol));
    const PyValue v = read_python_pickle(pickle_fixture("values_p" + std::to_string(protocol) + ".pkl"));
    const auto at = [&](const char* key) -> const PyValue& { return v.at(key, "values"); };
    EXPECT_TRUE(at("none").is_none());
    EXPECT_EQ(std::get<bool>(at("true").value), true);
    EXPECT_EQ(std::get<bool>(at("false").value), false);
    EXPECT_EQ(at("int").as_int("int"), -5);
    EXPECT_EQ(at("big").as_int("big"), std::int64_t{1} << 40);
    EXPECT_EQ(at("neg_big").as_int("neg_big"), -(std::int64_t{1} << 62));
    EXPECT_EQ(std::get<double>(at("float").value), 1.25);
    EXPECT_EQ(std::get<std::string>(at("text").value), "h\xc3\xa9llo \\ w\xc3\xb6rld\n\xe2\x82\xac");
    EXPECT_EQ(bytes_of(at("bytes")), std::string("\x00\xff" "ab'\"\\", 7));
    EXPECT_EQ(bytes_of(at("bytearray")), "xy");
    const auto& tuple = std::get<PyValue::Tuple>(at("tuple").value).items;
    ASSERT_EQ(tuple.size(), 2u);
    EXPECT_EQ(tuple[0].as_int("t"), 1);
    EXPECT_EQ(tuple[1].as_text("t"), "a");
    const PyList& nested = at("nested").as_list("nested");
    ASSERT_EQ(nested.size(), 2u);
    EXPECT_EQ(ints_of(nested[0]), (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(ints_of(nested[1].at("k", "nested")), (std::vector<std::int64_t>{3}));
    // One list referenced twice through the memo.
    EXPECT_EQ(ints_of(at("shared_a")), (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(ints_of(at("shared_b")), (std::vector<std::int64_t>{1, 2}));
    EXPECT_TRUE(std::get<PyList>(at("empty_list").value).empty());
    EXPECT_TRUE(std::get<PyValue::Tuple>(at("empty_tuple").value).items.empty());
    const std::vector<std::int64_t> long_list = ints_of(at("long_list"));
    ASSERT_EQ(long_list.size(), 1500u);  // more than one APPENDS batch of 1000
    for (std::size_t i = 0; i < long_list.size(); ++i) ASSERT_EQ(long_list[i], static_cast<std::int64_t>(i));

    EXPECT_TRUE(at::equal(at("f32_be").as_array("a"), at::tensor({1.5f, -2.0f})));
    const at::Tensor fortran = at("fortran_i2").as_array("a");
    EXPECT_TRUE(fortran.is_contiguous());
    EXPECT_TRUE(at::equal(fortran, at::arange(6, at::kShort).reshape({2, 3})));
    EXPECT_TRUE(at::equal(at("bool_arr").as_array("a"), bools({1, 0})));
    EXPECT_TRUE(at::equal(at("f64_2d").as_array("a"), at::arange(6, at::kDouble).reshape({3, 2})));
    EXPECT_TRUE(at::equal(at("strided_i8").as_array("a"), at::tensor({0, 2, 4, 6, 8}, at::kLong)));
    const at::Tensor scalar = at("scalar_i4").as_array("a");
    EXPECT_EQ(scalar.dim(), 0);
    EXPECT_EQ(scalar.scalar_type(), at::kInt);
    EXPECT_EQ(scalar.item<int>(), 7);
  }
}

TEST(PickleFixtures, GzippedFile) {
  const std::vector<std::uint8_t> plain = file_bytes(pickle_fixture("cifar_p2.pkl"));
  const fs::path gz = test::temp_dir("pickle-gz") / "cifar_p2.pkl.gz";
  gzFile out = gzopen(gz.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  gzwrite(out, plain.data(), static_cast<unsigned>(plain.size()));
  gzclose(out);
  expect_cifar_like(read_python_pickle(gz));
}

TEST(PickleFixtures, EveryTruncationIsAFileError) {
  for (const char* name : {"cifar_p0.pkl", "cifar_p2.pkl", "cifar_p5.pkl"}) {
    const std::vector<std::uint8_t> whole = file_bytes(pickle_fixture(name));
    for (std::size_t n = 0; n < whole.size(); ++n)
      EXPECT_THROW(parse_python_pickle(whole.data(), n, "cut.pkl"), FileError) << name << " cut at " << n;
  }
}

TEST(PickleFixtures, MissingFileIsNamed) {
  const fs::path missing = test::temp_dir("pickle-missing") / "data_batch_1";
  try {
    read_python_pickle(missing);
    ADD_FAILURE() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
}

// ---- Python 2 cPickle, written out by hand -----------------------------------------

// A CIFAR-like batch (2x4 uint8 data) plus a float, a long and a unicode value, as
// Python 2's cPickle.dump(batch, f, 0) writes it: repr() strings with escapes, I00 for False, raw-unicode-escape text.
const std::string kPython2Protocol0 =
    "(dp0\nS'data'\np1\ncnumpy.core.multiarray\n_reconstruct\np2\n(cnumpy\nndarray\np3\n(I0\ntp4\nS'b'\np5\ntp6\n"
    "Rp7\n(I1\n(I2\nI4\ntp8\ncnumpy\ndtype\np9\n(S'u1'\np10\nI0\nI1\ntp11\nRp12\n(I3\nS'|'\np13\nNNNI-1\nI-1\nI0\n"
    "tp14\nbI00\nS'\\x00\\x01\\n\\'\\\\\\xffA\\t'\np15\ntp16\nbsS'labels'\np17\n(lp18\nI3\naI7\nasS'batch_label'\n"
    "p19\nS'training batch 1 of 5'\np20\nsS'filenames'\np21\n(lp22\nS'a.png'\np23\naS\"b'.png\"\np24\nasS'ratio'\n"
    "p25\nF0.25\nsS'big'\np26\nL1099511627776L\nsS'name'\np27\nVcaf\xe9 \\u20ac\np28\ns.";

std::string with_size(const char* literal, std::size_t size) { return std::string(literal, size); }

TEST(PicklePython2, Protocol2CifarBatch) {
  // What Python 2's cPickle.dump(batch, f, 2) writes for a CIFAR-like batch whose data
  // is a 2x4 uint8 array: BINSTRING keys and values, numpy's _reconstruct and dtype.
  const char raw[] =
      "\x80\x02}q\x01("
      "U\x04" "dataq\x02"
      "cnumpy.core.multiarray\n_reconstruct\nq\x03"
      "cnumpy\nndarray\nq\x04"
      "K\x00\x85U\x01" "b\x87Rq\x05"
      "(K\x01K\x02K\x04\x86"
      "cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07"
      "(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
      "\x89T\x08\x00\x00\x00\x00\x01\x02\x03\xfa\xfb\xfc\xff"
      "tb"
      "U\x06labelsq\x08]q\x09(K\x03K\x07" "e"
      "U\x0b" "batch_labelq\x0aU\x15training batch 1 of 5q\x0b"
      "U\x09" "filenamesq\x0c]q\x0d(U\x05" "a.pngU\x05" "b.pnge"
      "u.";
  const PyValue batch = parse(with_size(raw, sizeof raw - 1));
  const at::Tensor data = batch.at("data", "batch").as_array("data");
  EXPECT_EQ(data.scalar_type(), at::kByte);
  EXPECT_TRUE(at::equal(data, at::tensor({0, 1, 2, 3, 250, 251, 252, 255}, at::kByte).reshape({2, 4})));
  EXPECT_EQ(ints_of(batch.at("labels", "batch")), (std::vector<std::int64_t>{3, 7}));
  EXPECT_EQ(batch.at("batch_label", "batch").as_text("label"), "training batch 1 of 5");
  EXPECT_EQ(bytes_of(batch.at("filenames", "batch").as_list("f")[1]), "b.png");
}

TEST(PicklePython2, Protocol0CifarBatch) {
  const PyValue batch = parse(kPython2Protocol0);
  const at::Tensor data = batch.at("data", "batch").as_array("data");
  EXPECT_TRUE(at::equal(data, at::tensor({0x00, 0x01, 0x0a, 0x27, 0x5c, 0xff, 0x41, 0x09}, at::kByte).reshape({2, 4})));
  EXPECT_EQ(ints_of(batch.at("labels", "batch")), (std::vector<std::int64_t>{3, 7}));
  EXPECT_EQ(bytes_of(batch.at("batch_label", "batch")), "training batch 1 of 5");
  EXPECT_EQ(bytes_of(batch.at("filenames", "batch").as_list("f")[1]), "b'.png");
  EXPECT_EQ(std::get<double>(batch.at("ratio", "batch").value), 0.25);
  EXPECT_EQ(batch.at("big", "batch").as_int("big"), std::int64_t{1} << 40);
  EXPECT_EQ(std::get<std::string>(batch.at("name", "batch").value), "caf\xc3\xa9 \xe2\x82\xac");
}

TEST(PicklePython2, StringEscapes) {
  // Octal, \x, quotes of both kinds, a line continuation and an unknown escape kept.
  const PyValue v = parse("S'\\101\\x42\\\"\\'\\q\\\\'\n.");
  EXPECT_EQ(bytes_of(v), "AB\"'\\q\\");
  expect_error("S'abc\n.", {"must be quoted"});
  expect_error("S'\\x4'\n.", {"invalid \\x escape"});
  // Raw-unicode-escape: an even run of backslashes does not start an escape.
  EXPECT_EQ(std::get<std::string>(parse("V\\\\u0041\\u0042\n.").value), "\\\\u0041B");
}

// ---- refused and hostile input ------------------------------------------------------

TEST(PickleRefused, GlobalsAreNamed) {
  expect_error("cos\nsystem\n(S'echo hi'\ntR.", {"refused global 'os.system'"});
  expect_error("\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R.", {"refused global 'posix.system'"});
  expect_error("c__builtin__\neval\n(S'1'\ntR.", {"refused global '__builtin__.eval'"});
  expect_error("cnumpy.core.multiarray\nscalar\n.", {"refused global 'numpy.core.multiarray.scalar'"});
  // Allowed globals cannot be left as data.
  expect_error("cnumpy\nndarray\n.", {"numpy.ndarray"});
}

TEST(PickleRefused, ObjectAndStructuredDtypes) {
  expect_error("cnumpy\ndtype\n(S'O8'\nI0\nI1\ntR.", {"object dtype"});
  expect_error("cnumpy\ndtype\n(S'V8'\nI0\nI1\ntR.", {"structured"});
  // A dtype state with fields.
  expect_error("cnumpy\ndtype\n(S'f4'\nI0\nI1\ntR(I3\nS'<'\nN(S'a'\ntNI-1\nI-1\nI0\ntb.", {"structured"});
}

TEST(PickleRefused, OpcodesOutsidePlainData) {
  expect_error("\x80\x02)\x8f.", {"sets"});
  expect_error("(S'x'\nP0\n.", {"persistent ids"});
  expect_error("\x80\x05\x97.", {"out-of-band buffers"});
  expect_error("(cos\nsystem\no.", {"refused global"});
  expect_error("(i__main__\nX\n.", {"class instance"});
  expect_error("\xff", {"unknown opcode 0xff"});
  expect_error("\x80\x06N.", {"protocol 6"});
}

TEST(PickleRefused, ArraysWithWrongParts) {
  const std::string reconstruct = "cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntS'b'\ntR";
  const std::string dtype_u1 = "cnumpy\ndtype\n(S'u1'\nI0\nI1\ntR(I3\nS'|'\nNNNI-1\nI-1\nI0\ntb";
  // Data shorter than the shape needs.
  expect_error(reconstruct + "(I1\n(I4\ntp0\n" + dtype_u1 + "I00\nS'abc'\ntb.", {"truncated array data", "needs 4 bytes"});
  // An object array's list of values.
  expect_error(reconstruct + "(I1\n(I1\nt" + dtype_u1 + "I00\n(lI1\natb.", {"object arrays"});
  // The subtype must be numpy.ndarray.
  expect_error("cnumpy.core.multiarray\n_reconstruct\n(cnumpy\ndtype\n(I0\ntS'b'\ntR.", {"something else than numpy.ndarray"});
  // BUILD on a list.
  expect_error("(l(tb.", {"BUILD on a list"});
  // A huge shape with a tiny buffer: refused by size, nothing allocated.
  expect_error(reconstruct + "(I1\n(I1099511627776\nI1099511627776\nt" + dtype_u1 + "I00\nS'ab'\ntb.", {"too large"});
  // A pending array left without BUILD.
  expect_error(reconstruct + ".", {"without its state"});
}

TEST(PickleHostile, LengthsBeyondTheInput) {
  expect_error(std::string("\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x10", 11), {"truncated", "BINUNICODE8"});
  expect_error(std::string("T\xff\xff\xff\xff", 5), {"negative length"});
  expect_error(std::string("T\x00\x00\x00\x7f" "abc", 8), {"truncated", "BINSTRING needs 2130706432 bytes"});
  expect_error(std::string("B\xff\xff\xff\xff" "a.", 7), {"truncated"});
  expect_error(std::string("\x8b\xff\xff\xff\x7f", 5), {"truncated", "LONG4"});
  expect_error(std::string("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff", 11), {"truncated", "FRAME"});
  expect_error("I12", {"no terminating newline"});
  expect_error(std::string("X\x03\x00\x00\x00\xc3\x28!.", 9), {"not valid UTF-8"});
}

TEST(PickleHostile, IntegersBeyond64Bits) {
  expect_error("I99999999999999999999\n.", {"does not fit 64 bits"});
  expect_error("L-99999999999999999999L\n.", {"does not fit 64 bits"});
  // LONG1 of 2^63 (nine bytes) does not fit; -2^63 (eight bytes) does.
  expect_error(std::string("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.", 12), {"does not fit 64 bits"});
  EXPECT_EQ(parse(std::string("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.", 11)).as_int("x"), INT64_MIN);
  // Redundant sign bytes are fine.
  EXPECT_EQ(parse(std::string("\x8a\x0a\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xff.", 13)).as_int("x"), -2);
  EXPECT_EQ(parse(std::string("\x8a\x02\xff\x00.", 5)).as_int("x"), 255);
}

TEST(PickleHostile, StackMemoAndMarkMisuse) {
  expect_error("a.", {"stack underflow"});
  expect_error("(a.", {"stack underflow"});  // APPEND may not reach below a MARK
  expect_error("NN.", {"2 values on the stack"});
  expect_error("(N.", {"open MARK"});
  expect_error("h\x05.", {"memo entry 5 is not defined"});
  expect_error("N.extra", {"ends at byte 2", "5 more bytes"});
  expect_error("", {"empty"});
  expect_error("(lp0\nNNs.", {"SETITEM's target must be a dict"});
  expect_error(std::string(5000, '('), {"nested MARKs"});
  expect_error(std::string(3, '\x93'), {"stack underflow"});
}

TEST(PickleHostile, DeepAndSelfReferencingContainers) {
  // A list that contains itself.
  expect_error(std::string("]q\x00h\x00" "a.", 7), {"nested deeper than"});
  // 100000 nested lists: refused, no stack overflow (neither reading nor freeing).
  std::string deep(100000, ']');
  deep += std::string(99999, 'a') + ".";
  expect_error(deep, {"nested deeper than"});
  // Dict keys must be text.
  expect_error("(dI1\nI2\ns.", {"dict key is a int"});
}

TEST(PickleHostile, SharedValuesCannotExplode) {
  // l0 = [s, s], l_k = [l_{k-1}, l_{k-1}], 40 times: 2^40 copies of a 255-byte string
  // from 600 bytes of input.
  std::string bomb = "C\xff" + std::string(255, 'x') + "q" + std::string(1, '\0') + "0";
  for (int k = 1; k <= 40; ++k) {
    bomb += "](h";
    bomb += static_cast<char>(k - 1);
    bomb += 'h';
    bomb += static_cast<char>(k - 1);
    bomb += "eq";
    bomb += static_cast<char>(k);
    if (k < 40) bomb += '0';  // POP: only the last list stays on the stack
  }
  bomb += ".";
  expect_error(bomb, {"more data than its size can justify"});
}

TEST(PickleValueAccess, TypedAccessNamesWhatAndType) {
  const PyValue v = parse("(dS'labels'\n(lI1\nasS'n'\nI3\ns.");
  try {
    v.at("labels", "data_batch_1").as_int("data_batch_1: 'labels'");
    ADD_FAILURE() << "no error";
  } catch (const FileError& e) {
    EXPECT_EQ(std::string(e.what()), "data_batch_1: 'labels': expected an int, got list");
  }
  try {
    v.at("data", "data_batch_1");
    ADD_FAILURE() << "no error";
  } catch (const FileError& e) {
    EXPECT_EQ(std::string(e.what()), "data_batch_1: no key 'data' (it has 'labels', 'n')");
  }
  EXPECT_THROW(v.as_array("x"), FileError);
  EXPECT_THROW(v.at("n", "x").as_text("n"), FileError);
  EXPECT_EQ(v.type_name(), "dict");
}

}  // namespace
}  // namespace ood::io
