// tf_test_shapes.h - a small C++ class hierarchy for the device (a pure virtual function, overrides, a
// virtual destructor), shared by ptx_kernels.cu and virtual_newdelete.cu: their kernels make the objects
// with device new and call through the vtables (.global arrays of function addresses, indirect calls).
#pragma once

struct Shape {
    __device__ virtual float area() const = 0;
    __device__ virtual int sides() const { return 0; }
    __device__ virtual ~Shape() {}
};
struct Square : Shape {
    float s;
    __device__ Square(float s) : s(s) {}
    __device__ float area() const override { return s * s; }
    __device__ int sides() const override { return 4; }
};
struct Triangle : Shape {
    float s;
    __device__ Triangle(float s) : s(s) {}
    __device__ float area() const override { return 0.5f * s * s; }
    __device__ int sides() const override { return 3; }
};
struct Circle : Shape {
    float r;
    __device__ Circle(float r) : r(r) {}
    __device__ float area() const override { return 3.0f * r * r; }
};
