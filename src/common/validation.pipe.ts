import { BadRequestException, ValidationError, ValidationPipe } from '@nestjs/common';

export interface FieldError {
  field: string;
  errors: string[];
}

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = error.constraints ? [{ field, errors: Object.values(error.constraints) }] : [];
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** class-validator messages start with the property name; prefix the parent path for nested fields. */
function qualify(field: string, text: string): string {
  const parent = field.includes('.') ? field.slice(0, field.lastIndexOf('.') + 1) : '';
  return `${parent}${text}`;
}

/** Whitelisting pipe whose 400 names every offending field, in `message` and in `fields`. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    stopAtFirstError: false,
    exceptionFactory: (errors) => {
      const fields = flatten(errors);
      return new BadRequestException({
        statusCode: 400,
        error: 'Bad Request',
        message: fields.flatMap(({ field, errors: texts }) => texts.map((text) => qualify(field, text))).join('; '),
        fields,
      });
    },
  });
}
